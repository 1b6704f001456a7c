// expect: the action text does not parse
#include <pipesched/schedules/custom.hpp>
// DualPipe's two directions with a route that names a stage twice (line 2: 2 3 2)
struct bad_routes {
  static constexpr std::string_view text = "0F0,3F1,3B1,0B0\n1F0,2F1,1B0,2B1\n";
  static constexpr std::string_view routes = "0 1\n2 3 2\n";
};
static_assert(pipesched::custom<bad_routes>::valid);
