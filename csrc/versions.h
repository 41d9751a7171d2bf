// Version counters of what an operator wrote. torch's own in-place ops bump
// them (in their ADInplaceOrView kernels), which is how autograd notices that a
// tensor saved for backward was changed afterwards; a custom operator has to
// do it itself, or backward() would silently use the updated values.
#pragma once

#include <ATen/ATen.h>

#include <initializer_list>
#include <optional>

namespace fused_optim {

// Bumps the version of every tensor in `lists` (each an operator's written list).
inline void bump_versions(std::initializer_list<at::TensorList> lists) {
  for (const at::TensorList& list : lists)
    for (const at::Tensor& t : list) t.unsafeGetTensorImpl()->bump_version();
}

// The grads are written only when they are unscaled in place (AMP).
inline at::TensorList unscaled(at::TensorList grads, const std::optional<at::Tensor>& grad_scale) {
  return grad_scale.has_value() ? grads : at::TensorList{};
}

inline at::TensorList written_models(const std::optional<at::TensorList>& model_params) {
  return model_params.value_or(at::TensorList{});
}

}  // namespace fused_optim
