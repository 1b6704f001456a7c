// expect: every path must start at stage 0
#include <pipesched/schedules/skip_paths.hpp>
using namespace pipesched;
static_assert(valid_paths<path_set<4, path<1, 2, 3>>>);
