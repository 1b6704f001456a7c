// expect: unbalanced paths
#include <pipesched/schedules/skip_paths.hpp>
using namespace pipesched;
static_assert(skip_given<path_set<5, path<0, 1, 4>, path<0, 1, 4>>, stages<5>, microbatches<2>>::valid);
