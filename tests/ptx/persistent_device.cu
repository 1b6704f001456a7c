// The persistent kernel's list is inlined: the kernel of persistent_executor<S, F> for several
// schedules, with device functors that call one non-inlined function of the user's. The
// ctest that builds this file to PTX (check_ptx.cmake) asserts that the kernels call nothing
// but the user's function and the protocol's out-of-line helpers (the wait, the group
// barrier, the failure record, the frees' release, the copy) — no call per action of the
// list itself; also for DualPipe-V with a functor that runs overlapped pairs in one call, and
// with a functor type per rank.
#include <pipesched/cuda/persistent.cuh>
#include <pipesched/schedules/dualpipe_v.hpp>
#include <pipesched/schedules/interleaved.hpp>
#include <pipesched/schedules/one_f_one_b.hpp>
#include <pipesched/schedules/zb_v.hpp>
#include <pipesched/schedules/zero_bubble.hpp>

#include <tuple>

__device__ __noinline__ void user_payload(int kind, int stage, int mb, void* out, void const* in) {
  if (out && in)
    static_cast<double*>(out)[threadIdx.x] = static_cast<double const*>(in)[threadIdx.x] + kind + stage + mb;
}

struct device_stage {
  template <class St>
  __device__ void forward(St, pipesched::io const& x, pipesched::cuda::device_group const&) {
    user_payload(0, St::stage, St::mb, x.out.data, x.in.data);
  }
  template <class St>
  __device__ void backward(St, pipesched::io const& x, pipesched::cuda::device_group const&) {
    user_payload(1, St::stage, St::mb, x.out.data, x.in.data);
  }
  template <class St>
  __device__ bool backward_input(St, pipesched::io const& x, pipesched::cuda::device_group const& g) {
    user_payload(2, St::stage, St::mb, x.out.data, x.aux.data);
    return g.sync();
  }
  template <class St>
  __device__ void backward_weight(St, pipesched::io const& x, pipesched::cuda::device_group const&) {
    user_payload(3, St::stage, St::mb, nullptr, x.aux.data);
  }
};

/// The same with forward_backward: an overlapped pair is one call.
struct pairing_stage : device_stage {
  template <class Sf, class Sb>
  __device__ void forward_backward(Sf, Sb, pipesched::io const& f, pipesched::io const& b,
                                   pipesched::cuda::device_group const&) {
    user_payload(4, Sf::stage, Sf::mb, f.out.data, f.in.data);
    user_payload(5, Sb::stage, Sb::mb, b.out.data, b.in.data);
  }
};

template <class S, class F = device_stage> void instantiate() {
  auto k = &pipesched::cuda::detail::persistent_kernel<S, F>;
  (void)k;
}

void all() {
  using namespace pipesched;
  instantiate<one_f_one_b<ranks<4>, microbatches<8>>>();
  instantiate<interleaved_1f1b<ranks<4>, microbatches<8>, chunks<2>>>();
  instantiate<zb_h1<ranks<4>, microbatches<8>>>();
  instantiate<zb_v<ranks<4>, microbatches<8>>>();
  instantiate<dualpipe_v<ranks<4>, microbatches<8>>, pairing_stage>();
  // a functor type per rank (a tuple, packed per functor_pack)
  instantiate<one_f_one_b<ranks<3>, microbatches<6>>, std::tuple<device_stage, pairing_stage, device_stage>>();
}
