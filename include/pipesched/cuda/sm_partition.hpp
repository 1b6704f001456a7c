// pipesched: SM partitions for the stages that share one GPU — the arithmetic (no CUDA
// header). green_contexts.cuh makes the partitions with the driver's green contexts; this
// header decides their size and says, before any driver call, what to change when they
// cannot fit.
#pragma once

#include <stdexcept>
#include <string>

namespace pipesched::cuda {

/// What the driver reports of a device's SMs (CUdevSmResource): how many, the smallest
/// partition it makes, and the granularity of a partition's size (a partition holds a
/// multiple of `alignment` SMs, at least `min_partition`).
struct sm_facts {
  unsigned sm_count = 0;
  unsigned min_partition = 1;
  unsigned alignment = 1;
};

/// Equal, disjoint partitions of one device: `per_stage` SMs each for `partitions` stages;
/// `left` SMs stay outside every partition (the driver's remainder: nobody's compute stream
/// runs there).
struct sm_plan {
  int partitions = 0;
  unsigned per_stage = 0;
  unsigned left = 0;
};

/// The size a request becomes: at least the smallest partition, rounded up to the
/// granularity (how cuDevSmResourceSplitByCount treats its minimum count).
constexpr unsigned sm_partition_size(sm_facts const& f, unsigned requested) {
  unsigned const g = f.alignment == 0 ? 1 : f.alignment;
  unsigned n = requested < f.min_partition ? f.min_partition : requested;
  n = (n + g - 1) / g * g;
  return n == 0 ? g : n;
}

/// The largest partition size of which `partitions` fit on the device (0: none fits).
constexpr unsigned sm_largest_fitting(sm_facts const& f, int partitions) {
  if (partitions <= 0) return 0;
  unsigned const g = f.alignment == 0 ? 1 : f.alignment;
  unsigned const n = f.sm_count / static_cast<unsigned>(partitions) / g * g;
  return n < f.min_partition || n == 0 ? 0 : n;
}

/// Plans `partitions` equal SM partitions of `requested` SMs each (0: the largest that fit).
/// Throws std::invalid_argument with a sentence saying what to change when they do not fit.
inline sm_plan plan_sm_partitions(sm_facts const& f, int partitions, unsigned requested) {
  if (partitions <= 0) throw std::invalid_argument("pipesched: SM partitions for " + std::to_string(partitions) + " stages");
  unsigned const fit = sm_largest_fitting(f, partitions);
  unsigned const each = requested == 0 ? fit : sm_partition_size(f, requested);
  std::string const device = "the GPU has " + std::to_string(f.sm_count) + " SMs, partitions of at least " +
                             std::to_string(f.min_partition) + " in multiples of " + std::to_string(f.alignment);
  if (fit == 0)
    throw std::invalid_argument("pipesched: " + std::to_string(partitions) + " stages cannot each have an SM partition on one GPU (" +
                                device + "): put fewer stages on this GPU or leave options::sm_per_stage at 0");
  if (each * static_cast<unsigned>(partitions) > f.sm_count)
    throw std::invalid_argument("pipesched: " + std::to_string(partitions) + " stages of " + std::to_string(requested) +
                                " SMs" + (each != requested ? " (" + std::to_string(each) + " after rounding)" : std::string()) +
                                " do not fit (" + device + "): ask for at most " + std::to_string(fit) +
                                " SMs per stage, or 0 for that");
  return sm_plan{partitions, each, f.sm_count - each * static_cast<unsigned>(partitions)};
}

} // namespace pipesched::cuda
