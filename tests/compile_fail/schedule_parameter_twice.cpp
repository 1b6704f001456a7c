// expect: a schedule parameter is given twice
// ranks<P> and its former name stages<P> are one parameter: giving both is refused.
#include <pipesched/schedules/one_f_one_b.hpp>
static_assert(pipesched::one_f_one_b<pipesched::ranks<4>, pipesched::microbatches<8>, pipesched::stages<4>>::valid);
