// Adam and AdamW on the CPU: the kernel of optimizers::adam_.
#include "kernel.h"

namespace fused_optim::cpu {
namespace {

void adam_cpu(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
              TensorList max_exp_avg_sqs, TensorList state_steps, double lr, double beta1,
              double beta2, double eps, double weight_decay, bool decoupled_weight_decay,
              bool amsgrad, bool bias_correction, bool maximize,
              const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
              const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  using namespace adam_list;
  auto step = begin_step<kCount>(
      {"optimizers::adam_", params, grads,
       {{"exp_avgs", exp_avgs}, {"exp_avg_sqs", exp_avg_sqs}, {"max_exp_avg_sqs", max_exp_avg_sqs, amsgrad}},
       state_steps, lr_tensor, grad_scale, found_inf, model_params},
      lr);
  if (!step) return;
  const Scalars& s = step->scalars;
  const WeightDecay wd = split_weight_decay(weight_decay, decoupled_weight_decay);
  with_flag(amsgrad, [&](auto use_max) {
    constexpr unsigned kState = lists(kExpAvg, kExpAvgSq) | (use_max ? lists(kMaxExpAvgSq) : 0u);
    multi_tensor_apply(step->lists, [&](int64_t i, auto chunk) {
      using T = typename decltype(chunk)::opmath;
      with_lerp_direction<T>(1.0 - beta1, [&](auto from) {
        const AdamCoeffs<T> c =
            make_adam_coeffs(grad_prep<T>(s, wd.l2, maximize), s.lr, beta1, beta2, eps, step->steps[i],
                             bias_correction, wd.decoupled, use_max);
        chunk.template update<lists(kParam, kGrad) | kState, lists(kParam) | kState>(
            [&](T(&x)[kCount]) {
              adam_update<from>(x[kParam], x[kGrad], x[kExpAvg], x[kExpAvgSq], x[kMaxExpAvgSq], c);
            });
      });
    });
  });
}

const DirectCall direct_call{"adam_", &adam_cpu};

}  // namespace

TORCH_LIBRARY_IMPL(optimizers, CPU, m) { m.impl("adam_", &adam_cpu); }

}  // namespace fused_optim::cpu
