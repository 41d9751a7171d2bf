// AdaBelief on CUDA: the functor that applies rules.h's adabelief_update to
// each chunk, with Adam's bias corrections computed from the tensor's step
// count on the device, and its launch.
#include "../rules.h"
#include "launch.h"
#include "multi_tensor_apply.cuh"
#include "scalars.cuh"

namespace fused_optim::cuda {
namespace {

using namespace adabelief_list;

template <typename S, typename G, bool kAmsgrad>
struct AdaBeliefFunctor {
  AdaBeliefArgs args;

  template <typename Metadata>
  __device__ void operator()(const Metadata& meta, const ChunkRef& chunk) const {
    using T = opmath_t<S>;
    const RunScalars s = read_run_scalars(args.common);
    if (s.skip) return;
    const WeightDecay wd = split_weight_decay(args.common.weight_decay, args.decoupled_weight_decay);
    const AdamCoeffs<T> c = make_adam_coeffs(
        grad_prep<T>(s, wd.l2, args.common.maximize), s.lr, args.beta1, args.beta2, args.eps,
        meta.step(chunk), /*bias_correction=*/true, wd.decoupled, kAmsgrad);
    constexpr unsigned kState =
        lists(kExpAvg, kExpAvgVar) | (kAmsgrad ? lists(kMaxExpAvgVar) : 0u);
    chunk_apply<lists(kParam, kGrad) | kState, lists(kParam) | kState, S, G>(
        meta, chunk, grad_unscale<T>(s), [&](T(&x)[kCount]) {
          adabelief_update(x[kParam], x[kGrad], x[kExpAvg], x[kExpAvgVar], x[kMaxExpAvgVar], c);
        });
  }
};

}  // namespace

cudaError_t launch_adabelief(ElementTypes types, Span<TensorPtrs<kCount>> tensors,
                             const AdaBeliefArgs& args, cudaStream_t stream) {
  return dispatch_element_types(types, [&](auto param_type, auto grad_type) {
    using S = typename decltype(param_type)::type;
    using G = typename decltype(grad_type)::type;
    return with_flag(args.amsgrad, [&](auto amsgrad) {
      using F = AdaBeliefFunctor<S, G, decltype(amsgrad)::value>;
      return multi_tensor_apply</*kHasStep=*/true>(tensors, F{args}, stream);
    });
  });
}

}  // namespace fused_optim::cuda
