// expect: a backward pass comes before its own forward
#include <pipesched/schedules/custom.hpp>
struct early_backward {
  static constexpr std::string_view text = "0B0,0F0\n1F0,1B0";
};
static_assert(pipesched::custom<early_backward>::valid);
