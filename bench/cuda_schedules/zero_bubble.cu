// bench_cuda_schedules, part: zb_h1, zb_h2 (see measure.cuh).
#include "measure.cuh"

#include <pipesched/schedules/zero_bubble.hpp>

namespace cuda_schedules {

void measure_zero_bubble(std::vector<row>& rows, double pass_us, int iterations, double copy_us) {
  rows.push_back(measure<zb_h1<ranks<4>, microbatches<32>>>(pass_us, iterations, copy_us));
  rows.push_back(measure<zb_h2<ranks<4>, microbatches<32>>>(pass_us, iterations, copy_us));
}

} // namespace cuda_schedules
