// expect: a micro-batch path breaks a path rule
#include <pipesched/schedules/skip_paths.hpp>
using namespace pipesched;
static_assert(skip_paths<1, stages<4>, microbatches<4>>::valid);
