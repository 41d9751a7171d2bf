#include "checks.h"

namespace fused_optim {

void check_lists(const char* op, at::TensorList params, const std::vector<NamedList>& lists) {
  for (const auto& list : lists) {
    if (!list.required && list.tensors.empty()) continue;
    TORCH_CHECK(list.tensors.size() == params.size(), op, ": ", list.name, " has ",
                list.tensors.size(), " tensors but params has ", params.size());
  }
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& p = params[i];
    TORCH_CHECK(!p.is_sparse(), op, ": params[", i, "] is sparse; sparse params are not supported");
    TORCH_CHECK(at::isFloatingType(p.scalar_type()), op, ": params[", i,
                "] has dtype ", p.scalar_type(),
                "; supported are float64, float32, bfloat16 and float16");
    for (const auto& list : lists) {
      if (list.tensors.empty()) continue;
      const at::Tensor& t = list.tensors[i];
      TORCH_CHECK(!t.is_sparse(), op, ": ", list.name, "[", i,
                  "] is sparse; sparse gradients are not supported");
      TORCH_CHECK(t.scalar_type() == p.scalar_type(), op, ": ", list.name, "[", i,
                  "] has dtype ", t.scalar_type(), " but params[", i, "] has ",
                  p.scalar_type());
      TORCH_CHECK(t.device() == p.device(), op, ": ", list.name, "[", i, "] is on ",
                  t.device(), " but params[", i, "] is on ", p.device());
      TORCH_CHECK(t.sizes() == p.sizes(), op, ": ", list.name, "[", i, "] has shape ",
                  t.sizes(), " but params[", i, "] has shape ", p.sizes());
    }
  }
}

void check_state_steps(const char* op, at::TensorList params, at::TensorList state_steps) {
  TORCH_CHECK(state_steps.size() == params.size(), op, ": state_steps has ", state_steps.size(),
              " tensors but params has ", params.size());
  for (size_t i = 0; i < state_steps.size(); ++i)
    TORCH_CHECK(state_steps[i].numel() == 1, op, ": state_steps[", i,
                "] must hold one element, got shape ", state_steps[i].sizes());
}

void check_scalar_tensor(const char* op, const char* name, const std::optional<at::Tensor>& t) {
  if (!t.has_value()) return;
  TORCH_CHECK(t->numel() == 1, op, ": ", name, " must hold one element, got shape ",
              t->sizes());
}

namespace {

void check_scalars(const char* op, const std::optional<at::Tensor>& lr_tensor,
                   const std::optional<at::Tensor>& grad_scale,
                   const std::optional<at::Tensor>& found_inf) {
  check_scalar_tensor(op, "lr_tensor", lr_tensor);
  check_scalar_tensor(op, "grad_scale", grad_scale);
  check_scalar_tensor(op, "found_inf", found_inf);
}

}  // namespace

void check_momentum_args(at::TensorList params, at::TensorList grads,
                         at::TensorList momentum_buffers, double momentum,
                         const std::optional<at::Tensor>& lr_tensor,
                         const std::optional<at::Tensor>& grad_scale,
                         const std::optional<at::Tensor>& found_inf) {
  const char* op = "optimizers::momentum_";
  check_lists(op, params, {{"grads", grads, true}, {"momentum_buffers", momentum_buffers, false}});
  TORCH_CHECK(momentum == 0.0 || momentum_buffers.size() == params.size(), op, ": momentum ",
              momentum, " needs one momentum buffer per param");
  check_scalars(op, lr_tensor, grad_scale, found_inf);
}

void check_rmsprop_args(at::TensorList params, at::TensorList grads, at::TensorList square_avgs,
                        at::TensorList grad_avgs, at::TensorList momentum_buffers,
                        at::TensorList state_steps, bool centered, double momentum,
                        const std::optional<at::Tensor>& lr_tensor,
                        const std::optional<at::Tensor>& grad_scale,
                        const std::optional<at::Tensor>& found_inf) {
  const char* op = "optimizers::rmsprop_";
  check_lists(op, params,
              {{"grads", grads, true},
               {"square_avgs", square_avgs, true},
               {"grad_avgs", grad_avgs, centered},
               {"momentum_buffers", momentum_buffers, momentum > 0.0}});
  check_state_steps(op, params, state_steps);
  check_scalars(op, lr_tensor, grad_scale, found_inf);
}

void check_adam_args(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs,
                     at::TensorList exp_avg_sqs, at::TensorList max_exp_avg_sqs,
                     at::TensorList state_steps, bool amsgrad,
                     const std::optional<at::Tensor>& lr_tensor,
                     const std::optional<at::Tensor>& grad_scale,
                     const std::optional<at::Tensor>& found_inf) {
  const char* op = "optimizers::adam_";
  check_lists(op, params,
              {{"grads", grads, true},
               {"exp_avgs", exp_avgs, true},
               {"exp_avg_sqs", exp_avg_sqs, true},
               {"max_exp_avg_sqs", max_exp_avg_sqs, amsgrad}});
  check_state_steps(op, params, state_steps);
  check_scalars(op, lr_tensor, grad_scale, found_inf);
}

void check_diffgrad_args(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs,
                         at::TensorList exp_avg_sqs, at::TensorList previous_grads,
                         at::TensorList state_steps, const std::optional<at::Tensor>& lr_tensor,
                         const std::optional<at::Tensor>& grad_scale,
                         const std::optional<at::Tensor>& found_inf) {
  const char* op = "optimizers::diffgrad_";
  check_lists(op, params,
              {{"grads", grads, true},
               {"exp_avgs", exp_avgs, true},
               {"exp_avg_sqs", exp_avg_sqs, true},
               {"previous_grads", previous_grads, true}});
  check_state_steps(op, params, state_steps);
  check_scalars(op, lr_tensor, grad_scale, found_inf);
}

}  // namespace fused_optim
