// diffGrad on the CPU: the kernel of optimizers::diffgrad_.
#include "kernel.h"

// glibc's libmvec has SIMD versions of exp; declaring them lets the compiler
// vectorize diffGrad's friction sigmoid (glibc declares them only under -ffast-math).
extern "C" float expf(float) __attribute__((simd("notinbranch")));
extern "C" double exp(double) __attribute__((simd("notinbranch")));

namespace fused_optim::cpu {
namespace {

void diffgrad_cpu(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
                  TensorList previous_grads, TensorList state_steps, double lr, double beta1,
                  double beta2, double eps, double weight_decay, bool maximize,
                  const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
                  const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  using namespace diffgrad_list;
  auto step = begin_step<kCount>(
      {"optimizers::diffgrad_", params, grads,
       {{"exp_avgs", exp_avgs}, {"exp_avg_sqs", exp_avg_sqs}, {"previous_grads", previous_grads}},
       state_steps, lr_tensor, grad_scale, found_inf, model_params},
      lr);
  if (!step) return;
  const Scalars& s = step->scalars;
  constexpr unsigned kState = lists(kExpAvg, kExpAvgSq, kPreviousGrad);
  multi_tensor_apply(step->lists, [&](int64_t i, auto chunk) {
    using T = typename decltype(chunk)::opmath;
    with_lerp_direction<T>(1.0 - beta1, [&](auto from) {
      const AdamCoeffs<T> c = make_adam_coeffs(grad_prep<T>(s, weight_decay, maximize), s.lr, beta1,
                                               beta2, eps, step->steps[i], /*bias_correction=*/true,
                                               /*decoupled_weight_decay=*/0.0, /*amsgrad=*/false);
      chunk.template update<lists(kParam, kGrad) | kState, lists(kParam) | kState>(
          [&](T(&x)[kCount]) {
            diffgrad_update<from>(x[kParam], x[kGrad], x[kExpAvg], x[kExpAvgSq], x[kPreviousGrad], c);
          });
    });
  });
}

const DirectCall direct_call{"diffgrad_", &diffgrad_cpu};

}  // namespace

TORCH_LIBRARY_IMPL(optimizers, CPU, m) { m.impl("diffgrad_", &diffgrad_cpu); }

}  // namespace fused_optim::cpu
