// expect: wait on each other in a cycle
// expect: errc::cyclic_wait; int Rank = 0; int Position = 1;
// A host executor of a table whose ranks wait on each other in a cycle stops the build
// (the sentence, and where: the compiler's instantiation line names rank and position),
// though nobody names S::valid.
#include <vector>
#include <pipesched/host/executor.hpp>
#include <pipesched/schedules/custom.hpp>
// rank 1 runs micro-batch 1 first, which rank 0 sends only after micro-batch 0's backward
struct cyclic {
  static constexpr std::string_view text = "0F0,0B0,0F1,0B1\n1F1,1F0,1B0,1B1";
};
struct stage {
  template <class St> void forward(St, pipesched::io const&) {}
  template <class St> void backward(St, pipesched::io const&) {}
};
int main() {
  std::vector<stage> fs(2);
  pipesched::host::executor<pipesched::custom<cyclic>> ex({.slot_bytes = 8});
  ex.run(fs);
}
