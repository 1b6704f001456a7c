// expect: the action text does not parse
#include <pipesched/schedules/custom.hpp>
struct bad {
  static constexpr std::string_view text = "0F0,0X0";
};
static_assert(pipesched::custom<bad>::valid);
