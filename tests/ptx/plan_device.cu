// CUDA readiness of plans: the plan of every rank of every schedule, instantiated in host
// code and inside a __global__ kernel with __device__ stage functors. The ctest that
// builds this file to PTX (check_ptx.cmake) asserts that the kernels contain no `call`
// except to the functors' own function, user_payload: the plan's code is fully inlined.
#include <utility>

#include <pipesched/plan/plan.hpp>
#include <pipesched/schedules/gpipe.hpp>
#include <pipesched/schedules/interleaved.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>
#include <pipesched/schedules/v_shape.hpp>
#include <pipesched/schedules/zb_v.hpp>
#include <pipesched/schedules/zero_bubble.hpp>

using namespace pipesched;

/// The user's device code: a real, non-inlined function that the functors call. Its calls
/// are the only ones allowed in the PTX.
__device__ __noinline__ void user_payload(int kind, int stage, int mb, void* out, void const* in) {
  if (out && in)
    static_cast<double*>(out)[threadIdx.x] = static_cast<double const*>(in)[threadIdx.x] + kind + stage + mb;
}

struct device_stage {
  template <class St> __device__ void forward(St, io const& x) {
    user_payload(0, St::stage, St::mb, x.out.data, x.in.data);
  }
  template <class St> __device__ void backward(St, io const& x) {
    user_payload(1, St::stage, St::mb, x.out.data, x.in.data);
  }
  template <class St> __device__ void backward_input(St, io const& x) {
    user_payload(2, St::stage, St::mb, x.out.data, x.aux.data);
  }
  template <class St> __device__ void backward_weight(St, io const& x) {
    user_payload(3, St::stage, St::mb, nullptr, x.aux.data);
  }
};

/// A device transport in the shape a CUDA backend's would have (here: a copy through a
/// mailbox per peer, enough to give the plan something to call).
struct device_transport {
  double* mailbox;
  template <class St> __device__ void send(St, io const& x) {
    mailbox[St::peer * blockDim.x + threadIdx.x] = static_cast<double const*>(x.in.data)[threadIdx.x];
  }
  template <class St> __device__ void recv(St, io const& x) {
    static_cast<double*>(x.out.data)[threadIdx.x] = mailbox[St::peer * blockDim.x + threadIdx.x];
  }
};

/// One kernel per (schedule, rank): the whole rank's list in one kernel. Schedules are
/// types and the rank an integer, so nvcc can generate the kernel's host stub.
template <class S, int Rank> __global__ void rank_kernel(view const* slots, double* mailbox) {
  device_stage f;
  device_transport t{mailbox};
  plan<S, Rank>::run(f, t, slots);
}

// The same plans in host code, with host functors.
struct host_stage {
  int calls = 0;
  template <class St> void forward(St, io const&) { ++calls; }
  template <class St> void backward(St, io const&) { ++calls; }
  template <class St> void backward_input(St, io const&) { ++calls; }
  template <class St> void backward_weight(St, io const&) { ++calls; }
  template <class St> void send(St, io const&) { ++calls; }
  template <class St> void recv(St, io const&) { ++calls; }
};

template <class S> int host_calls(view const* slots) {
  host_stage f;
  [&]<int... R>(std::integer_sequence<int, R...>) { (plan<S, R>::run(f, f, slots), ...); }
  (std::make_integer_sequence<int, S::ranks>{});
  return f.calls;
}

/// Kernel addresses, kept so that every kernel is instantiated and emitted.
void const* kernel_addresses[64];
int kernel_count = 0;

template <class S> int instantiate(view const* slots) {
  [&]<int... R>(std::integer_sequence<int, R...>) {
    ((kernel_addresses[kernel_count++ % 64] = reinterpret_cast<void const*>(&rank_kernel<S, R>)), ...);
  }
  (std::make_integer_sequence<int, S::ranks>{});
  return host_calls<S>(slots);
}

int instantiate_all(view const* slots) {
  return instantiate<gpipe<stages<4>, microbatches<8>>>(slots) +
         instantiate<one_f_one_b<stages<4>, microbatches<8>>>(slots) +
         instantiate<interleaved_1f1b<stages<4>, microbatches<8>, chunks<2>>>(slots) +
         instantiate<zb_h1<stages<4>, microbatches<8>>>(slots) + instantiate<zb_h2<stages<4>, microbatches<8>>>(slots) +
         instantiate<zb_v<stages<4>, microbatches<8>>>(slots) + instantiate<v_half<stages<4>, microbatches<8>>>(slots) +
         instantiate<v_min<stages<4>, microbatches<8>>>(slots);
}
