// Test support: small hand-built tables on each placement, valid for any p, m, v.
#pragma once

#include "pipesched/core/table.hpp"

namespace pipesched::testing {

/// Breadth-first order on loop placement: every chunk's forwards, then the fused backwards
/// in reverse chunk order.
inline table looped_table(int p, int m, int v) {
  table t = make_table(p, m, v, placement::loop);
  for (int r = 0; r < p; ++r) {
    for (int k = 0; k < v; ++k)
      for (int j = 0; j < m; ++j) push(t, op::forward, stage_of(placement::loop, p, r, k), j);
    for (int k = v - 1; k >= 0; --k)
      for (int j = 0; j < m; ++j) push(t, op::backward, stage_of(placement::loop, p, r, k), j);
  }
  return t;
}

/// Fill-drain on V placement with split backward: F chunk 0, F chunk 1, I+W chunk 1, I+W chunk 0.
inline table v_table(int p, int m) {
  table t = make_table(p, m, 2, placement::v_shape);
  t.split_backward = true;
  for (int r = 0; r < p; ++r) {
    int s0 = stage_of(placement::v_shape, p, r, 0), s1 = stage_of(placement::v_shape, p, r, 1);
    for (int j = 0; j < m; ++j) push(t, op::forward, s0, j);
    for (int j = 0; j < m; ++j) push(t, op::forward, s1, j);
    for (int j = 0; j < m; ++j) {
      push(t, op::backward_input, s1, j);
      push(t, op::backward_weight, s1, j);
    }
    for (int j = 0; j < m; ++j) {
      push(t, op::backward_input, s0, j);
      push(t, op::backward_weight, s0, j);
    }
  }
  return t;
}

} // namespace pipesched::testing
