// bench_cuda_schedules, part: zb_v (see measure.cuh).
#include "measure.cuh"

#include <pipesched/schedules/zb_v.hpp>

namespace cuda_schedules {

void measure_zb_v(std::vector<row>& rows, double pass_us, int iterations, double copy_us) {
  rows.push_back(measure<zb_v<ranks<4>, microbatches<32>>>(pass_us, iterations, copy_us));
}

} // namespace cuda_schedules
