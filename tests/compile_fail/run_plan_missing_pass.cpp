// expect: the table misses a pass
// A plan of a table with a missing pass (rank 1 never runs B of micro-batch 1) stops the
// build, though nobody names S::valid.
#include <pipesched/plan/plan.hpp>
#include <pipesched/schedules/custom.hpp>
struct missing {
  static constexpr std::string_view text = "0F0,0F1,0B0,0B1\n1F0,1B0,1F1";
};
struct stage {
  template <class St> void forward(St, pipesched::io const&) {}
  template <class St> void backward(St, pipesched::io const&) {}
};
int main() {
  stage f;
  pipesched::plan<pipesched::custom<missing>, 0>::run(f, f, static_cast<pipesched::view const*>(nullptr));
}
