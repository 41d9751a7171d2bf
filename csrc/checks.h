// Input checks shared by every backend's kernels: what a caller of
// torch.ops.optimizers.* passed, with the offending value in the message.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace fused_optim {

// A state list of an operator, by its schema name: one tensor per param, or
// (`required` false) empty, a state the call's options leave unused. A
// required list passed empty is reported with `required_because` when set.
struct NamedList {
  const char* name;
  at::TensorList tensors;
  bool required = true;
  std::string required_because = {};
};

using OptionalTensorList = std::optional<at::TensorList>;

// The error for a momentum_ call that has momentum but no buffers.
inline std::string momentum_requires_buffers(double momentum) {
  return momentum == 0.0 ? std::string{}
                         : c10::str("momentum ", momentum, " needs one momentum buffer per param");
}

// One call of an operator as every backend sees it before it runs: the lists
// by their schema names (ops.cpp), in schema order. Each backend's kernel
// builds one and calls check() first, then bump_versions() once it knows the
// step is not skipped.
struct OpCall {
  const char* op;  // "optimizers::adam_"
  at::TensorList params;
  at::TensorList grads;
  std::vector<NamedList> states;
  std::optional<at::TensorList> state_steps;  // nullopt: the operator keeps no step counts
  const std::optional<at::Tensor>& lr_tensor;
  const std::optional<at::Tensor>& grad_scale;
  const std::optional<at::Tensor>& found_inf;
  const OptionalTensorList& model_params;

  // List lengths, shapes, dtypes and devices, step counts, overlapping memory,
  // and the scalar tensors (lr_tensor, grad_scale, found_inf: one element each).
  void check() const;

  // Bumps the version of every tensor the call writes: the params, states,
  // step counts and model params, and the grads under AMP. torch's own
  // in-place ops bump them (in their ADInplaceOrView kernels), which is how
  // autograd notices that a tensor saved for backward was changed; a custom
  // operator has to do it itself, or backward() would silently use the new
  // values.
  void bump_versions() const;

  // The params, grads, states and model params (empty without master
  // weights), in their rule's order (rules.h), as the backends' loops take them.
  template <size_t N>
  std::array<std::vector<at::Tensor>, N> lists() const {
    TORCH_INTERNAL_ASSERT(states.size() + 3 == N, op, ": ", N, " lists for ", states.size(), " states");
    std::array<std::vector<at::Tensor>, N> out;
    out[0] = params.vec();
    out[1] = grads.vec();
    for (size_t k = 0; k < states.size(); ++k) out[k + 2] = states[k].tensors.vec();
    if (model_params.has_value()) out[N - 1] = model_params->vec();
    return out;
  }

  // Which of lists() the call writes: all but the grads (those too under AMP,
  // which the loops know from their unscale factor).
  template <size_t N>
  static std::array<bool, N> written() {
    std::array<bool, N> out;
    out.fill(true);
    out[1] = false;
    return out;
  }
};

}  // namespace fused_optim
