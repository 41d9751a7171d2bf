// RMSProp on CUDA: the functor that applies rules.h's rmsprop_update to each
// chunk, and its launch.
#include "../rules.h"
#include "launch.h"
#include "multi_tensor_apply.cuh"
#include "scalars.cuh"

namespace fused_optim::cuda {
namespace {

using namespace rmsprop_list;

template <typename S, typename G, bool kCentered, bool kHasMomentum>
struct RMSPropFunctor {
  RMSPropArgs args;

  template <typename Metadata>
  __device__ void operator()(const Metadata& meta, const ChunkRef& chunk) const {
    using T = opmath_t<S>;
    const RunScalars s = read_run_scalars(args.common);
    if (s.skip) return;
    const RMSPropCoeffs<T> c = make_rmsprop_coeffs(
        grad_prep<T>(s, args.common.weight_decay, args.common.maximize), s.lr, args.alpha, args.eps,
        kHasMomentum ? args.momentum : 0.0, kCentered);
    constexpr unsigned kState = lists(kSquareAvg) | (kCentered ? lists(kGradAvg) : 0u) |
                                (kHasMomentum ? lists(kBuffer) : 0u);
    chunk_apply<lists(kParam, kGrad) | kState, lists(kParam) | kState, S, G>(
        meta, chunk, grad_unscale<T>(s), [&](T(&x)[kCount]) {
          rmsprop_update(x[kParam], x[kGrad], x[kSquareAvg], x[kGradAvg], x[kBuffer], c);
        });
  }
};

}  // namespace

cudaError_t launch_rmsprop(ElementTypes types, Span<TensorPtrs<kCount>> tensors,
                           const RMSPropArgs& args, cudaStream_t stream) {
  return dispatch_element_types(types, [&](auto param_type, auto grad_type) {
    using S = typename decltype(param_type)::type;
    using G = typename decltype(grad_type)::type;
    return with_flag(args.centered, [&](auto centered) {
      return with_flag(args.momentum > 0.0, [&](auto has_momentum) {
        using F = RMSPropFunctor<S, G, decltype(centered)::value, decltype(has_momentum)::value>;
        return multi_tensor_apply</*kHasStep=*/false>(tensors, F{args}, stream);
      });
    });
  });
}

}  // namespace fused_optim::cuda
