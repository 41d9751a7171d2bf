#include "state_steps.h"

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
  const bool host_flag = !found_inf.has_value() || found_inf->is_cpu();
  if (host_flag && all_cpu_float(state_steps)) {
    if (found_inf.has_value() && found_inf->item<double>() != 0.0) return;
    for (const at::Tensor& s : state_steps) *s.data_ptr<float>() += 1.0f;
    return;
  }
  at::_foreach_add_(state_steps, 1.0);
  if (found_inf.has_value()) {
    const at::Tensor flag = found_inf->to(state_steps[0].device(), at::kFloat).reshape({});
    at::_foreach_add_(state_steps, flag, -1.0);
  }
}

double step_value(const at::Tensor& step) {
  if (step.is_cpu() && step.scalar_type() == at::kFloat) return *step.const_data_ptr<float>();
  return step.item<double>();
}

}  // namespace fused_optim
