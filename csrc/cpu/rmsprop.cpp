// RMSProp on the CPU: the kernel of optimizers::rmsprop_.
#include "kernel.h"

namespace fused_optim::cpu {
namespace {

void rmsprop_cpu(TensorList params, TensorList grads, TensorList square_avgs, TensorList grad_avgs,
                 TensorList momentum_buffers, TensorList state_steps, double lr, double alpha,
                 double eps, double weight_decay, double momentum, bool centered, bool maximize,
                 const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
                 const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  using namespace rmsprop_list;
  auto step = begin_step<kCount>(
      {"optimizers::rmsprop_", params, grads,
       {{"square_avgs", square_avgs},
        {"grad_avgs", grad_avgs, centered},
        {"momentum_buffers", momentum_buffers, momentum > 0.0}},
       state_steps, lr_tensor, grad_scale, found_inf, model_params},
      lr);
  if (!step) return;
  const Scalars& s = step->scalars;
  with_flag(centered, [&](auto is_centered) {
    with_flag(momentum > 0.0, [&](auto has_momentum) {
      constexpr unsigned kState = lists(kSquareAvg) | (is_centered ? lists(kGradAvg) : 0u) |
                                  (has_momentum ? lists(kBuffer) : 0u);
      multi_tensor_apply(step->lists, [&](int64_t, auto chunk) {
        using T = typename decltype(chunk)::opmath;
        with_lerp_direction<T>(1.0 - alpha, [&](auto from) {
          const RMSPropCoeffs<T> c =
              make_rmsprop_coeffs(grad_prep<T>(s, weight_decay, maximize), s.lr, alpha, eps,
                                  has_momentum ? momentum : 0.0, is_centered);
          chunk.template update<lists(kParam, kGrad) | kState, lists(kParam) | kState>(
              [&](T(&x)[kCount]) {
                rmsprop_update<from>(x[kParam], x[kGrad], x[kSquareAvg], x[kGradAvg], x[kBuffer], c);
              });
        });
      });
    });
  });
}

const DirectCall direct_call{"rmsprop_", &rmsprop_cpu};

}  // namespace

TORCH_LIBRARY_IMPL(optimizers, CPU, m) { m.impl("rmsprop_", &rmsprop_cpu); }

}  // namespace fused_optim::cpu
