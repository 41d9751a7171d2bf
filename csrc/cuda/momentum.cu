// Momentum (SGD with heavy-ball or Nesterov momentum) on CUDA: the functor that
// applies rules.h's momentum_update to each chunk, and its launch.
#include "../rules.h"
#include "launch.h"
#include "multi_tensor_apply.cuh"
#include "scalars.cuh"

namespace fused_optim::cuda {
namespace {

using namespace momentum_list;

template <typename S, typename G, bool kHasMomentum, bool kNesterov, bool kFirstStep>
struct MomentumFunctor {
  MomentumArgs args;

  template <typename Metadata>
  __device__ void operator()(const Metadata& meta, const ChunkRef& chunk) const {
    using T = opmath_t<S>;
    const RunScalars s = read_run_scalars(args.common);
    if (s.skip) return;
    const MomentumCoeffs<T> c = make_momentum_coeffs(
        grad_prep<T>(s, args.common.weight_decay, args.common.maximize), s.lr, args.momentum,
        args.dampening);
    // The first step sets the buffer without reading it.
    constexpr unsigned kRead =
        lists(kParam, kGrad) | (kHasMomentum && !kFirstStep ? lists(kBuffer) : 0u);
    constexpr unsigned kWrite = lists(kParam) | (kHasMomentum ? lists(kBuffer) : 0u);
    chunk_apply<kRead, kWrite, S, G>(meta, chunk, grad_unscale<T>(s), [&](T(&x)[kCount]) {
      momentum_update<kHasMomentum, kNesterov, kFirstStep>(x[kParam], x[kGrad], x[kBuffer], c);
    });
  }
};

}  // namespace

cudaError_t launch_momentum(ElementTypes types, Span<TensorPtrs<kCount>> tensors,
                            const MomentumArgs& args, cudaStream_t stream) {
  return dispatch_element_types(types, [&](auto param_type, auto grad_type) {
    using S = typename decltype(param_type)::type;
    using G = typename decltype(grad_type)::type;
    return with_flag(args.momentum != 0.0, [&](auto has_momentum) {
      return with_flag(args.nesterov, [&](auto nesterov) {
        return with_flag(args.first_step, [&](auto first_step) {
          using F = MomentumFunctor<S, G, decltype(has_momentum)::value, decltype(nesterov)::value,
                                    decltype(first_step)::value>;
          return multi_tensor_apply</*kHasStep=*/false>(tensors, F{args}, stream);
        });
      });
    });
  });
}

}  // namespace fused_optim::cuda
