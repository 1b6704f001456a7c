// expect: pipesched: stream_executor: the stage functor has no member `template <class Step> void forward\(Step const&, pipesched::io const&\)` accepting a pipesched::runtime_step
// errors: 1
// One mistake, one message on the host stream executor (endless input streams): a stage
// functor without forward. Before, the call failed inside the executor's stage thread: one
// error, "no member named forward", pointing into the executor rather than at the rule.
#include <vector>

#include <pipesched/host/stream.hpp>

struct no_forward {
  void backward(pipesched::runtime_step const&, pipesched::io const&) {}
};

void run(std::vector<no_forward>& fs, pipesched::host::stream_options const& o) {
  pipesched::host::stream_executor<no_forward> ex(fs, o);
  (void)ex.push(nullptr); // issues the stages
  (void)ex.pop();
}
