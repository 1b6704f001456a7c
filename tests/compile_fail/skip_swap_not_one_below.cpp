// expect: must be exactly frontier - 1
#include <pipesched/schedules/skip_paths.hpp>
using namespace pipesched;
static_assert(valid_paths<path_set<4, path<0, 3, 1>>, path_layout::round_trip>);
