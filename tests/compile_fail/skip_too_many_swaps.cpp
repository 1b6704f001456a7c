// expect: at most 2 swaps
#include <pipesched/schedules/skip_paths.hpp>
using namespace pipesched;
static_assert(valid_paths<path_set<8, path<0, 2, 1, 4, 3, 6, 5, 7>>>);
