// expect: wait on each other in a cycle
#include <pipesched/schedules/custom.hpp>
// rank 1 runs micro-batch 1 first, which rank 0 sends only after micro-batch 0's backward
struct cyclic {
  static constexpr std::string_view text = "0F0,0B0,0F1,0B1\n1F1,1F0,1B0,1B1";
};
static_assert(pipesched::custom<cyclic>::valid);
