// expect: blocking sends and receives wait on each other: the lowered schedule would hang
// A table with its own transfers in an order that hangs under blocking transfers (rank 0
// waits for the gradient before it sends the activation that produces it) stops the
// build when run with host::run, though nobody names S::valid.
#include <vector>
#include <pipesched/host/executor.hpp>
#include <pipesched/schedules/custom.hpp>
struct hang {
  static constexpr std::string_view text = "0F0,0RECV_B0,0SEND_F0,0B0\n1RECV_F0,1F0,1B0,1SEND_B0";
};
struct stage {
  template <class St> void forward(St, pipesched::io const&) {}
  template <class St> void backward(St, pipesched::io const&) {}
};
int main() {
  std::vector<stage> fs(2);
  pipesched::host::run<pipesched::custom<hang>>(fs, {.slot_bytes = 8});
}
