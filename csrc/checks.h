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

// Checks that every list has one tensor per param, of the param's shape, dtype
// and device, and that no tensor is sparse or complex.
void check_lists(const char* op, at::TensorList params, const std::vector<NamedList>& lists);

// Checks that state_steps holds one single-element step count per param.
void check_state_steps(const char* op, at::TensorList params, at::TensorList state_steps);

// The learning rate: lr_tensor's value when given (a 0-dim or 1-element tensor), else lr.
void check_scalar_tensor(const char* op, const char* name,
                         const std::optional<at::Tensor>& t);

}  // namespace fused_optim
