// Input checks shared by every backend's kernels: what a caller of
// torch.ops.optimizers.* passed, with the offending value in the message.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

namespace fused_optim {

// A named tensor list; `required` false means it may be empty (an unused state).
struct NamedList {
  const char* name;
  at::TensorList tensors;
  bool required;
};

using OptionalTensorList = std::optional<at::TensorList>;

// Checks that every list has one tensor per param, of the param's shape and
// device, and that no tensor is sparse or complex. Dtypes: the states have the
// params' dtype; the grads too, unless model_params is given (fp32 master
// weights): then params are float32, model_params bf16/fp16 of the same shape
// and device, and the grads have the model params' dtype. state_steps (empty
// for an operator without step counts) holds one float32/float64 count per
// param. No tensor that the call writes overlaps another tensor of the call, or
// itself (an expanded tensor): the grads are written when grads_written (AMP
// unscaling), the params, states, step counts and model params always.
void check_lists(const char* op, at::TensorList params, at::TensorList grads,
                 const OptionalTensorList& model_params, const std::vector<NamedList>& states,
                 at::TensorList state_steps, bool grads_written);

// The learning rate: lr_tensor's value when given (a 0-dim or 1-element tensor), else lr.
void check_scalar_tensor(const char* op, const char* name,
                         const std::optional<at::Tensor>& t);

// The arguments of each operator, checked the same way by every backend: list
// lengths, shapes, dtypes and devices, step counts, and the optional scalar
// tensors (lr_tensor, grad_scale, found_inf: one element each).
void check_momentum_args(at::TensorList params, at::TensorList grads,
                         at::TensorList momentum_buffers, double momentum,
                         const std::optional<at::Tensor>& lr_tensor,
                         const std::optional<at::Tensor>& grad_scale,
                         const std::optional<at::Tensor>& found_inf,
                         const OptionalTensorList& model_params);
void check_rmsprop_args(at::TensorList params, at::TensorList grads, at::TensorList square_avgs,
                        at::TensorList grad_avgs, at::TensorList momentum_buffers,
                        at::TensorList state_steps, bool centered, double momentum,
                        const std::optional<at::Tensor>& lr_tensor,
                        const std::optional<at::Tensor>& grad_scale,
                        const std::optional<at::Tensor>& found_inf,
                        const OptionalTensorList& model_params);
void check_adam_args(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs,
                     at::TensorList exp_avg_sqs, at::TensorList max_exp_avg_sqs,
                     at::TensorList state_steps, bool amsgrad,
                     const std::optional<at::Tensor>& lr_tensor,
                     const std::optional<at::Tensor>& grad_scale,
                     const std::optional<at::Tensor>& found_inf,
                     const OptionalTensorList& model_params);
void check_diffgrad_args(at::TensorList params, at::TensorList grads, at::TensorList exp_avgs,
                         at::TensorList exp_avg_sqs, at::TensorList previous_grads,
                         at::TensorList state_steps, const std::optional<at::Tensor>& lr_tensor,
                         const std::optional<at::Tensor>& grad_scale,
                         const std::optional<at::Tensor>& found_inf,
                         const OptionalTensorList& model_params);

}  // namespace fused_optim
