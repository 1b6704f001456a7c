// expect: must end at stage S-1
#include <pipesched/schedules/skip_paths.hpp>
using namespace pipesched;
static_assert(skip_given<path_set<4, path<0, 1, 2>>, stages<4>, microbatches<1>>::valid);
