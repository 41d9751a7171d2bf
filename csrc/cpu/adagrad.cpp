// AdaGrad on the CPU: the kernel of optimizers::adagrad_.
#include "kernel.h"

namespace fused_optim::cpu {
namespace {

void adagrad_cpu(TensorList params, TensorList grads, TensorList state_sums, TensorList state_steps,
                 double lr, double lr_decay, double weight_decay, double eps, bool maximize,
                 const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
                 const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  using namespace adagrad_list;
  auto step = begin_step<kCount>({"optimizers::adagrad_", params, grads, {{"state_sums", state_sums}},
                                  state_steps, lr_tensor, grad_scale, found_inf, model_params},
                                 lr);
  if (!step) return;
  const Scalars& s = step->scalars;
  multi_tensor_apply(step->lists, [&](int64_t i, auto chunk) {
    using T = typename decltype(chunk)::opmath;
    const AdagradCoeffs<T> c = make_adagrad_coeffs(grad_prep<T>(s, weight_decay, maximize), s.lr,
                                                   lr_decay, eps, step->steps[i]);
    chunk.template update<lists(kParam, kGrad, kSum), lists(kParam, kSum)>(
        [&](T(&x)[kCount]) { adagrad_update(x[kParam], x[kGrad], x[kSum], c); });
  });
}

const DirectCall direct_call{"adagrad_", &adagrad_cpu};

}  // namespace

TORCH_LIBRARY_IMPL(optimizers, CPU, m) { m.impl("adagrad_", &adagrad_cpu); }

}  // namespace fused_optim::cpu
