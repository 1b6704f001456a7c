// expect: unknown schedule parameter
#include <pipesched/schedules/one_f_one_b.hpp>
struct not_a_parameter {};
static_assert(pipesched::one_f_one_b<pipesched::stages<4>, pipesched::microbatches<8>, not_a_parameter>::valid);
