// expect: a send and its peer's receive do not match
// The buffer plan of a table whose sends and receives pair the wrong micro-batches stops
// the build, though nobody names S::valid.
#include <pipesched/plan/buffer_plan.hpp>
#include <pipesched/schedules/custom.hpp>
struct mismatch {
  static constexpr std::string_view text = "0F0,0F1,0SEND_F1,0SEND_F0,0RECV_B0,0RECV_B1,0B0,0B1\n"
                                           "1RECV_F0,1RECV_F1,1F0,1F1,1B0,1B1,1SEND_B0,1SEND_B1";
};
int main() { return pipesched::buffer_plan<pipesched::custom<mismatch>>::slots(0); }
