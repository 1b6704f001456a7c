// expect: an overlapped pair must be a forward followed by a B or I
#include <pipesched/schedules/custom.hpp>
// rank 0 overlaps two forwards
struct two_forwards {
  static constexpr std::string_view text = "0F0,(0F1;0F2)OVERLAP_F_B,0B0,0B1,0B2\n1F0,1B0,1F1,1B1,1F2,1B2";
};
static_assert(pipesched::custom<two_forwards>::valid);
