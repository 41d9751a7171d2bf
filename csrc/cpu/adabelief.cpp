// AdaBelief on the CPU: the kernel of optimizers::adabelief_.
#include "kernel.h"

namespace fused_optim::cpu {
namespace {

void adabelief_cpu(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_vars,
                   TensorList max_exp_avg_vars, TensorList state_steps, double lr, double beta1,
                   double beta2, double eps, double weight_decay, bool decoupled_weight_decay,
                   bool amsgrad, bool maximize, const optional<Tensor>& lr_tensor,
                   const optional<Tensor>& grad_scale, const optional<Tensor>& found_inf,
                   const OptionalTensorList& model_params) {
  using namespace adabelief_list;
  auto step = begin_step<kCount>(
      {"optimizers::adabelief_", params, grads,
       {{"exp_avgs", exp_avgs},
        {"exp_avg_vars", exp_avg_vars},
        {"max_exp_avg_vars", max_exp_avg_vars, amsgrad}},
       state_steps, lr_tensor, grad_scale, found_inf, model_params},
      lr);
  if (!step) return;
  const Scalars& s = step->scalars;
  const WeightDecay wd = split_weight_decay(weight_decay, decoupled_weight_decay);
  with_flag(amsgrad, [&](auto use_max) {
    constexpr unsigned kState = lists(kExpAvg, kExpAvgVar) | (use_max ? lists(kMaxExpAvgVar) : 0u);
    multi_tensor_apply(step->lists, [&](int64_t i, auto chunk) {
      using T = typename decltype(chunk)::opmath;
      with_lerp_direction<T>(1.0 - beta1, [&](auto from) {
        const AdamCoeffs<T> c = make_adam_coeffs(grad_prep<T>(s, wd.l2, maximize), s.lr, beta1, beta2,
                                                 eps, step->steps[i], /*bias_correction=*/true,
                                                 wd.decoupled, use_max);
        chunk.template update<lists(kParam, kGrad) | kState, lists(kParam) | kState>(
            [&](T(&x)[kCount]) {
              adabelief_update<from>(x[kParam], x[kGrad], x[kExpAvg], x[kExpAvgVar],
                                     x[kMaxExpAvgVar], c);
            });
      });
    });
  });
}

const DirectCall direct_call{"adabelief_", &adabelief_cpu};

}  // namespace

TORCH_LIBRARY_IMPL(optimizers, CPU, m) { m.impl("adabelief_", &adabelief_cpu); }

}  // namespace fused_optim::cpu
