// Step counts, advanced inside the operators (one pass instead of a separate
// foreach call per step), by every backend alike.
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace fused_optim {

// Adds 1 to each step count, unless found_inf is set (a step GradScaler skips
// does not count). CPU float32 counts are updated in place directly; others
// (CUDA) with foreach ops that need no host sync and can be graph-captured.
void advance_steps(at::TensorList state_steps, const std::optional<at::Tensor>& found_inf);

// A step count's value on the host (after advance_steps).
double step_value(const at::Tensor& step);

}  // namespace fused_optim
