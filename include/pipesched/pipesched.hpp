// pipesched: the umbrella header of the host-only core (includes no CUDA header).
// Prefer the precise header where compile time matters; this one pulls in everything.
#pragma once

// core: parameters, actions, tables, diagnostics, the schedule type
#include "pipesched/core/action.hpp"
#include "pipesched/core/action_text.hpp"
#include "pipesched/core/config.hpp"
#include "pipesched/core/counts.hpp"
#include "pipesched/core/diagnostic.hpp"
#include "pipesched/core/graph.hpp"
#include "pipesched/core/params.hpp"
#include "pipesched/core/schedule.hpp"
#include "pipesched/core/static_table.hpp"
#include "pipesched/core/table.hpp"
#include "pipesched/core/vec.hpp"

// lowering: transfers and buffer slots
#include "pipesched/lower/lower.hpp"

// analysis: verification, cost model, simulation
#include "pipesched/analysis/cost.hpp"
#include "pipesched/analysis/csv.hpp"
#include "pipesched/analysis/render.hpp"
#include "pipesched/analysis/simulate.hpp"
#include "pipesched/analysis/simulate_lowered.hpp"
#include "pipesched/analysis/verify.hpp"

// schedules: one header per family, and the run-time registry of names
#include "pipesched/schedules/custom.hpp"
#include "pipesched/schedules/forward_only.hpp"
#include "pipesched/schedules/gpipe.hpp"
#include "pipesched/schedules/interleaved.hpp"
#include "pipesched/schedules/one_f_one_b.hpp"
#include "pipesched/schedules/registry.hpp"
#include "pipesched/schedules/select.hpp"
#include "pipesched/schedules/skip_paths.hpp"
#include "pipesched/schedules/v_shape.hpp"
#include "pipesched/schedules/zb_v.hpp"
#include "pipesched/schedules/zero_bubble.hpp"
#include "pipesched/plan/buffer_plan.hpp"
#include "pipesched/plan/plan.hpp"
#include "pipesched/plan/stage_functor.hpp"
#include "pipesched/plan/step.hpp"
#include "pipesched/host/executor.hpp"
