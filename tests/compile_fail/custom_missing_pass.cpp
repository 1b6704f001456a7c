// expect: the table misses a pass
#include <pipesched/schedules/custom.hpp>
struct missing {
  static constexpr std::string_view text = "0F0,0F1,0B0\n1F0,1B0,1F1,1B1";
};
static_assert(pipesched::custom<missing>::valid);
