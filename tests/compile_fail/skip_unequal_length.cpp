// expect: same number of stages
#include <pipesched/schedules/skip_paths.hpp>
using namespace pipesched;
static_assert(valid_paths<path_set<4, path<0, 1, 3>, path<0, 1, 2, 3>>>);
