// RAdam on CUDA: the functor that applies rules.h's radam_update to each
// chunk, with the step size and rectification computed from the tensor's step
// count on the device, and its launch.
#include "../rules.h"
#include "launch.h"
#include "multi_tensor_apply.cuh"
#include "scalars.cuh"

namespace fused_optim::cuda {
namespace {

using namespace radam_list;

template <typename S, typename G>
struct RAdamFunctor {
  RAdamArgs args;

  template <typename Metadata>
  __device__ void operator()(const Metadata& meta, const ChunkRef& chunk) const {
    using T = opmath_t<S>;
    const RunScalars s = read_run_scalars(args.common);
    if (s.skip) return;
    const WeightDecay wd = split_weight_decay(args.common.weight_decay, args.decoupled_weight_decay);
    const RAdamStepScalars st = radam_step_scalars(s.lr, args.beta1, args.beta2, meta.step(chunk));
    const RAdamCoeffs<T> c = make_radam_coeffs(grad_prep<T>(s, wd.l2, args.common.maximize), s.lr,
                                               args.beta1, args.beta2, args.eps, st, wd.decoupled);
    constexpr unsigned kState = lists(kExpAvg, kExpAvgSq);
    auto apply = [&](auto rectified) {
      chunk_apply<lists(kParam, kGrad) | kState, lists(kParam) | kState, S, G>(
          meta, chunk, grad_unscale<T>(s), [&](T(&x)[kCount]) {
            radam_update<decltype(rectified)::value>(x[kParam], x[kGrad], x[kExpAvg], x[kExpAvgSq], c);
          });
    };
    // Uniform across the block: a tensor's chunk is rectified or not as a whole.
    if (st.rectified)
      apply(std::true_type{});
    else
      apply(std::false_type{});
  }
};

}  // namespace

cudaError_t launch_radam(ElementTypes types, Span<TensorPtrs<kCount>> tensors, const RAdamArgs& args,
                         cudaStream_t stream) {
  return dispatch_element_types(types, [&](auto param_type, auto grad_type) {
    using S = typename decltype(param_type)::type;
    using G = typename decltype(grad_type)::type;
    return multi_tensor_apply</*kHasStep=*/true>(tensors, RAdamFunctor<S, G>{args}, stream);
  });
}

}  // namespace fused_optim::cuda
