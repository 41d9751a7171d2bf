// AdaGrad on CUDA: the functor that applies rules.h's adagrad_update to each
// chunk, with the decayed lr computed from the tensor's step count on the
// device, and its launch.
#include "../rules.h"
#include "launch.h"
#include "multi_tensor_apply.cuh"
#include "scalars.cuh"

namespace fused_optim::cuda {
namespace {

using namespace adagrad_list;

template <typename S, typename G>
struct AdagradFunctor {
  AdagradArgs args;

  template <typename Metadata>
  __device__ void operator()(const Metadata& meta, const ChunkRef& chunk) const {
    using T = opmath_t<S>;
    const RunScalars s = read_run_scalars(args.common);
    if (s.skip) return;
    const AdagradCoeffs<T> c =
        make_adagrad_coeffs(grad_prep<T>(s, args.common.weight_decay, args.common.maximize), s.lr,
                            args.lr_decay, args.eps, meta.step(chunk));
    chunk_apply<lists(kParam, kGrad, kSum), lists(kParam, kSum), S, G>(
        meta, chunk, grad_unscale<T>(s),
        [&](T(&x)[kCount]) { adagrad_update(x[kParam], x[kGrad], x[kSum], c); });
  }
};

}  // namespace

cudaError_t launch_adagrad(ElementTypes types, Span<TensorPtrs<kCount>> tensors, const AdagradArgs& args,
                           cudaStream_t stream) {
  return dispatch_element_types(types, [&](auto param_type, auto grad_type) {
    using S = typename decltype(param_type)::type;
    using G = typename decltype(grad_type)::type;
    return multi_tensor_apply</*kHasStep=*/true>(tensors, AdagradFunctor<S, G>{args}, stream);
  });
}

}  // namespace fused_optim::cuda
