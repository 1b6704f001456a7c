// expect: visits the same stage twice
#include <pipesched/schedules/skip_paths.hpp>
using namespace pipesched;
static_assert(valid_paths<path_set<4, path<0, 2, 2, 3>>>);
