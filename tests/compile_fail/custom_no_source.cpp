// expect: custom<Source> needs
#include <pipesched/schedules/custom.hpp>
struct empty_source {};
static_assert(pipesched::custom<empty_source>::valid);
