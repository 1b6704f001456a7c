// bench_cuda_schedules, part: gpipe, one_f_one_b (see measure.cuh).
#include "measure.cuh"

#include <pipesched/schedules/gpipe.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>

namespace cuda_schedules {

void measure_gpipe_1f1b(std::vector<row>& rows, double pass_us, int iterations, double copy_us) {
  rows.push_back(measure<gpipe<ranks<4>, microbatches<32>>>(pass_us, iterations, copy_us));
  rows.push_back(measure<one_f_one_b<ranks<4>, microbatches<32>>>(pass_us, iterations, copy_us));
}

} // namespace cuda_schedules
