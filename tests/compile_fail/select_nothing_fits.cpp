// expect: no_schedule_fits_the_memory_budget<
#include <pipesched/schedules/select.hpp>
using namespace pipesched;
using choice = select_schedule<stages<8>, microbatches<24>, memory_budget<1.0>, costs<1.0, 2.0, 1.0>>;
static_assert(choice::fits);
