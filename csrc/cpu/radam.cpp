// RAdam on the CPU: the kernel of optimizers::radam_.
#include "kernel.h"

namespace fused_optim::cpu {
namespace {

void radam_cpu(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
               TensorList state_steps, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool decoupled_weight_decay, bool maximize,
               const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
               const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  using namespace radam_list;
  auto step = begin_step<kCount>(
      {"optimizers::radam_", params, grads, {{"exp_avgs", exp_avgs}, {"exp_avg_sqs", exp_avg_sqs}},
       state_steps, lr_tensor, grad_scale, found_inf, model_params},
      lr);
  if (!step) return;
  const Scalars& s = step->scalars;
  const WeightDecay wd = split_weight_decay(weight_decay, decoupled_weight_decay);
  constexpr unsigned kUsed = lists(kParam, kGrad, kExpAvg, kExpAvgSq);
  multi_tensor_apply(step->lists, [&](int64_t i, auto chunk) {
    using T = typename decltype(chunk)::opmath;
    const RAdamStepScalars st = radam_step_scalars(s.lr, beta1, beta2, step->steps[i]);
    with_flag(st.rectified, [&](auto rectified) {
      with_lerp_direction<T>(1.0 - beta1, [&](auto from) {
        const RAdamCoeffs<T> c =
            make_radam_coeffs(grad_prep<T>(s, wd.l2, maximize), s.lr, beta1, beta2, eps, st, wd.decoupled);
        chunk.template update<kUsed, kUsed & ~lists(kGrad)>([&](T(&x)[kCount]) {
          radam_update<rectified, from>(x[kParam], x[kGrad], x[kExpAvg], x[kExpAvgSq], c);
        });
      });
    });
  });
}

const DirectCall direct_call{"radam_", &radam_cpu};

}  // namespace

TORCH_LIBRARY_IMPL(optimizers, CPU, m) { m.impl("radam_", &radam_cpu); }

}  // namespace fused_optim::cpu
