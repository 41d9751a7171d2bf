// diffGrad on CUDA: the functor that applies rules.h's diffgrad_update to each
// chunk, with the bias corrections computed from the tensor's step count on the
// device, and its launch.
#include "../rules.h"
#include "launch.h"
#include "multi_tensor_apply.cuh"
#include "scalars.cuh"

namespace fused_optim::cuda {
namespace {

using namespace diffgrad_list;

template <typename S, typename G>
struct DiffGradFunctor {
  DiffGradArgs args;

  template <typename Metadata>
  __device__ void operator()(const Metadata& meta, const ChunkRef& chunk) const {
    using T = opmath_t<S>;
    const RunScalars s = read_run_scalars(args.common);
    if (s.skip) return;
    const AdamCoeffs<T> c = make_adam_coeffs(
        grad_prep<T>(s, args.common.weight_decay, args.common.maximize), s.lr, args.beta1,
        args.beta2, args.eps, meta.step(chunk), /*bias_correction=*/true,
        /*decoupled_weight_decay=*/0.0, /*amsgrad=*/false);
    constexpr unsigned kState = lists(kExpAvg, kExpAvgSq, kPreviousGrad);
    chunk_apply<lists(kParam, kGrad) | kState, lists(kParam) | kState, S, G>(
        meta, chunk, grad_unscale<T>(s), [&](T(&x)[kCount]) {
          diffgrad_update(x[kParam], x[kGrad], x[kExpAvg], x[kExpAvgSq], x[kPreviousGrad], c);
        });
  }
};

}  // namespace

cudaError_t launch_diffgrad(ElementTypes types, Span<TensorPtrs<kCount>> tensors,
                            const DiffGradArgs& args, cudaStream_t stream) {
  return dispatch_element_types(types, [&](auto param_type, auto grad_type) {
    using S = typename decltype(param_type)::type;
    using G = typename decltype(grad_type)::type;
    return multi_tensor_apply</*kHasStep=*/true>(tensors, DiffGradFunctor<S, G>{args}, stream);
  });
}

}  // namespace fused_optim::cuda
