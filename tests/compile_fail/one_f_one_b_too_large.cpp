// expect: too many ranks, stages or micro-batches
#include <pipesched/schedules/one_f_one_b.hpp>
static_assert(pipesched::one_f_one_b<pipesched::stages<5000>, pipesched::microbatches<8>>::valid);
