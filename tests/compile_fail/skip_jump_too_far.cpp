// expect: jump at most 4 stages past
#include <pipesched/schedules/skip_paths.hpp>
using namespace pipesched;
static_assert(valid_paths<path_set<8, path<0, 1, 7>>>);
