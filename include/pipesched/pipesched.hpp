// pipesched: the umbrella header of the host-only core (includes no CUDA header).
// Prefer the precise header where compile time matters; this one pulls in everything.
#pragma once

// core: plain data — parameters, actions, tables, diagnostics, vec
#include "pipesched/core/action.hpp"
#include "pipesched/core/action_text.hpp"
#include "pipesched/core/config.hpp"
#include "pipesched/core/counts.hpp"
#include "pipesched/core/diagnostic.hpp"
#include "pipesched/core/graph.hpp"
#include "pipesched/core/params.hpp"
#include "pipesched/core/static_table.hpp"
#include "pipesched/core/table.hpp"
#include "pipesched/core/vec.hpp"

// pipeline: the chain over that data — simulate, lower (transfers, slots), verify, and the
// schedule<> type that runs it inside the compiler
#include "pipesched/pipeline/cost.hpp"
#include "pipesched/pipeline/lower.hpp"
#include "pipesched/pipeline/schedule.hpp"
#include "pipesched/pipeline/simulate.hpp"
#include "pipesched/pipeline/simulate_lowered.hpp"
#include "pipesched/pipeline/verify.hpp"

// analysis: what people look at — pictures and CSV
#include "pipesched/analysis/csv.hpp"
#include "pipesched/analysis/json.hpp"
#include "pipesched/analysis/render.hpp"

// schedules: one header per family, and the run-time registry of names
#include "pipesched/schedules/custom.hpp"
#include "pipesched/schedules/dualpipe.hpp"
#include "pipesched/schedules/dualpipe_v.hpp"
#include "pipesched/schedules/forward_only.hpp"
#include "pipesched/schedules/gpipe.hpp"
#include "pipesched/schedules/interleaved.hpp"
#include "pipesched/schedules/interleaved_zb.hpp"
#include "pipesched/schedules/looped_bfs.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"
#include "pipesched/schedules/registry.hpp"
#include "pipesched/schedules/select.hpp"
#include "pipesched/schedules/skip_paths.hpp"
#include "pipesched/schedules/v_shape.hpp"
#include "pipesched/schedules/zb_v.hpp"
#include "pipesched/schedules/zero_bubble.hpp"

// plans: a rank's list unrolled into calls of the user's stage functors
#include "pipesched/plan/buffer_plan.hpp"
#include "pipesched/plan/plan.hpp"
#include "pipesched/plan/stage_functor.hpp"
#include "pipesched/plan/step.hpp"

// host backend: threads and in-process channels (MPI: include pipesched/host/mpi.hpp)
#include "pipesched/host/executor.hpp"
