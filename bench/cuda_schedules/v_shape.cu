// bench_cuda_schedules, part: v_half, v_min (see measure.cuh).
#include "measure.cuh"

#include <pipesched/schedules/v_shape.hpp>

namespace cuda_schedules {

void measure_v_shape(std::vector<row>& rows, double pass_us, int iterations, double copy_us) {
  rows.push_back(measure<v_half<ranks<4>, microbatches<32>>>(pass_us, iterations, copy_us));
  rows.push_back(measure<v_min<ranks<4>, microbatches<32>>>(pass_us, iterations, copy_us));
}

} // namespace cuda_schedules
