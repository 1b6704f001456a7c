// The two stream programs of a schedule (copy and rendezvous transfers), derived and checked
// in one constant evaluation chain each, for the stream_program_budget*.cu TUs: a schedule
// that fails either stops the build with stream_program_of's own sentence (report<>), its
// instantiation naming the schedule.
#pragma once

#include <cstddef>

#include <pipesched/cuda/stream_program.hpp>

namespace pipesched_test {

template <class... S>
inline constexpr bool
    both_programs_valid = ((pipesched::cuda::stream_program_of<S>::valid &&
                            pipesched::cuda::stream_program_of<S, pipesched::cuda::transfer_mode::rendezvous>::valid) &&
                           ...);

/// The programs' unit counts, so that the TU instantiates their issue tables as well.
template <class... S>
inline constexpr std::size_t
    both_programs_units = ((pipesched::cuda::stream_program_of<S>::units +
                            pipesched::cuda::stream_program_of<S, pipesched::cuda::transfer_mode::rendezvous>::units) +
                           ...);

} // namespace pipesched_test
