#include "state_steps.h"

#include <unordered_map>
#include <vector>

namespace fused_optim {

namespace {

bool all_cpu_float(at::TensorList steps) {
  for (const at::Tensor& s : steps)
    if (!s.is_cpu() || s.scalar_type() != at::kFloat) return false;
  return true;
}

}  // namespace

void advance_steps(at::TensorList state_steps, const std::optional<at::Tensor>& found_inf) {
  if (state_steps.empty()) return;
  if (!found_inf.has_value() || found_inf->is_cpu()) {  // the flag is known here
    if (found_inf.has_value() && found_inf->item<double>() != 0.0) return;
    if (all_cpu_float(state_steps)) {
      for (const at::Tensor& s : state_steps) *s.data_ptr<float>() += 1.0f;
    } else {
      at::_foreach_add_(state_steps, 1.0);
    }
    return;
  }
  // steps += 1 - (found_inf != 0), on the device. GradScaler passes the sum of
  // its per-device flags, which can exceed 1.
  const at::Tensor skipped = found_inf->ne(0).to(at::kFloat).reshape({});
  std::unordered_map<at::Device, std::vector<at::Tensor>> by_device;
  for (const at::Tensor& s : state_steps) by_device[s.device()].push_back(s);
  for (auto& [device, steps] : by_device) {
    at::_foreach_add_(steps, 1.0);
    at::_foreach_add_(steps, skipped.to(device), -1.0);
  }
}

double step_value(const at::Tensor& step) {
  if (step.is_cpu() && step.scalar_type() == at::kFloat) return *step.const_data_ptr<float>();
  return step.item<double>();
}

}  // namespace fused_optim
