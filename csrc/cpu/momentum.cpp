// Momentum (SGD with heavy-ball or Nesterov momentum) on the CPU: the kernel of optimizers::momentum_.
#include "kernel.h"

namespace fused_optim::cpu {
namespace {

void momentum_cpu(TensorList params, TensorList grads, TensorList momentum_buffers, double lr,
                  double momentum, double dampening, bool nesterov, double weight_decay,
                  bool maximize, bool first_step, const optional<Tensor>& lr_tensor,
                  const optional<Tensor>& grad_scale, const optional<Tensor>& found_inf,
                  const OptionalTensorList& model_params) {
  using namespace momentum_list;
  auto step = begin_step<kCount>(
      {"optimizers::momentum_", params, grads,
       {{"momentum_buffers", momentum_buffers, momentum != 0.0,
         momentum_requires_buffers(momentum)}},
       std::nullopt, lr_tensor, grad_scale, found_inf, model_params},
      lr);
  if (!step) return;
  const Scalars& s = step->scalars;
  with_flag(momentum != 0.0, [&](auto has_momentum) {
    with_flag(nesterov, [&](auto is_nesterov) {
      with_flag(first_step, [&](auto first) {
        // The first step sets the buffer without reading it.
        constexpr unsigned kRead = lists(kParam, kGrad) | (has_momentum && !first ? lists(kBuffer) : 0u);
        constexpr unsigned kWrite = lists(kParam) | (has_momentum ? lists(kBuffer) : 0u);
        multi_tensor_apply(step->lists, [&](int64_t, auto chunk) {
          using T = typename decltype(chunk)::opmath;
          const MomentumCoeffs<T> c = make_momentum_coeffs(grad_prep<T>(s, weight_decay, maximize),
                                                           s.lr, momentum, dampening);
          chunk.template update<kRead, kWrite>([&](T(&x)[kCount]) {
            momentum_update<has_momentum, is_nesterov, first>(x[kParam], x[kGrad], x[kBuffer], c);
          });
        });
      });
    });
  });
}

const DirectCall direct_call{"momentum_", &momentum_cpu};

}  // namespace

TORCH_LIBRARY_IMPL(optimizers, CPU, m) { m.impl("momentum_", &momentum_cpu); }

}  // namespace fused_optim::cpu
