// Adam and AdamW on CUDA: the functor that applies rules.h's adam_update to
// each chunk, with the bias corrections computed from the tensor's step count
// on the device, and its launch.
#include "../rules.h"
#include "launch.h"
#include "multi_tensor_apply.cuh"
#include "scalars.cuh"

namespace fused_optim::cuda {
namespace {

using namespace adam_list;

template <typename S, bool kAmsgrad>
struct AdamFunctor {
  AdamArgs args;

  template <typename Metadata>
  __device__ void operator()(const Metadata& meta, const ChunkRef& chunk) const {
    using T = opmath_t<S>;
    const RunScalars s = read_run_scalars(args.common);
    if (s.skip) return;
    const bool decoupled = args.decoupled_weight_decay;
    const double wd = args.common.weight_decay;
    const AdamCoeffs<T> c = make_adam_coeffs(
        grad_prep<T>(s, decoupled ? 0.0 : wd, args.common.maximize), s.lr, args.beta1, args.beta2,
        args.eps, meta.step(chunk), args.bias_correction, decoupled ? wd : 0.0, kAmsgrad);
    S* const ptrs[kCount] = {
        meta.template chunk_ptr<S>(kParam, chunk), meta.template chunk_ptr<S>(kGrad, chunk),
        meta.template chunk_ptr<S>(kExpAvg, chunk), meta.template chunk_ptr<S>(kExpAvgSq, chunk),
        kAmsgrad ? meta.template chunk_ptr<S>(kMaxExpAvgSq, chunk) : nullptr};
    constexpr unsigned kState = lists(kExpAvg, kExpAvgSq) | (kAmsgrad ? lists(kMaxExpAvgSq) : 0u);
    chunk_apply<lists(kParam, kGrad) | kState, lists(kParam) | kState>(
        ptrs, chunk.size, [&](T(&x)[kCount]) {
          adam_update(x[kParam], x[kGrad], x[kExpAvg], x[kExpAvgSq], x[kMaxExpAvgSq], c);
        });
  }
};

}  // namespace

cudaError_t launch_adam(ScalarType dtype, Span<TensorPtrs<kCount>> tensors, const AdamArgs& args,
                        cudaStream_t stream) {
  return dispatch_scalar_type(dtype, [&](auto type) {
    using S = typename decltype(type)::type;
    return with_flag(args.amsgrad, [&](auto amsgrad) {
      using F = AdamFunctor<S, decltype(amsgrad)::value>;
      return multi_tensor_apply</*kHasStep=*/true>(tensors, F{args}, stream);
    });
  });
}

}  // namespace fused_optim::cuda
