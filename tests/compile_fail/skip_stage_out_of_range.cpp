// expect: names a stage outside
#include <pipesched/schedules/skip_paths.hpp>
using namespace pipesched;
static_assert(valid_paths<path_set<4, path<0, 2, 4>>, path_layout::round_trip>);
