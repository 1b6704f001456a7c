// bench_cuda_schedules, part: interleaved_1f1b (see measure.cuh).
#include "measure.cuh"

#include <pipesched/schedules/interleaved.hpp>

namespace cuda_schedules {

void measure_interleaved(std::vector<row>& rows, double pass_us, int iterations, double copy_us) {
  rows.push_back(measure<interleaved_1f1b<ranks<4>, microbatches<32>, chunks<2>>>(pass_us, iterations, copy_us));
}

} // namespace cuda_schedules
