// What every CPU kernel shares (csrc/cpu/<rule>.cpp, one per operator, each
// registered under the CPU dispatch key): a kernel checks its call (checks.h),
// makes its rule's per-tensor coefficients, and runs the rule's element op over
// the generic multi-tensor apply (multi_tensor_cpu.h). The math is in rules.h.
// Each file also registers its operator's direct call (direct_call.h), typed by
// its kernel.
#pragma once

#include <torch/library.h>

#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "../checks.h"
#include "../direct_call.h"
#include "../op_lists.h"
#include "../rules.h"
#include "../state_steps.h"
#include "multi_tensor_cpu.h"

namespace fused_optim::cpu {

using at::Tensor;
using at::TensorList;
using std::optional;

// torch's lerp starts from the nearer end (rules.h, make_lerp): f(from) gets
// the direction of a lerp of `weight` as a compile-time LerpFrom, which the
// element op passes to the rule, and makes the rule's coefficients itself, so
// that every flag in them is a constant of the loop: with a run-time select
// (or a flag read from memory) GCC does not vectorize the loop (Adam 34 ms vs
// 14 ms at 16M).
template <typename T, typename F>
void with_lerp_direction(double weight, const F& f) {
  with_flag(make_lerp<T>(weight).from_end, [&](auto from_end) {
    f(std::integral_constant<LerpFrom, from_end ? LerpFrom::kEnd : LerpFrom::kStart>{});
  });
}

// The scalars every rule shares: lr (a float or a tensor), AMP's loss scale.
struct Scalars {
  double lr;
  double inv_grad_scale;
  bool skip;  // found_inf is set: the step is skipped
  // AMP: 1/grad_scale, by which the grads are left unscaled after the step; none without a grad_scale.
  std::optional<double> unscale_grads;
};

inline Scalars read_scalars(double lr, const optional<Tensor>& lr_tensor,
                            const optional<Tensor>& grad_scale, const optional<Tensor>& found_inf) {
  Scalars s{lr, 1.0, false, std::nullopt};
  if (lr_tensor.has_value()) s.lr = lr_tensor->item<double>();
  if (grad_scale.has_value()) s.unscale_grads = s.inv_grad_scale = 1.0 / grad_scale->item<double>();
  if (found_inf.has_value()) s.skip = found_inf->item<double>() != 0.0;
  return s;
}

template <typename T>
GradPrep<T> grad_prep(const Scalars& s, double weight_decay, bool maximize) {
  return make_grad_prep<T>(s.inv_grad_scale, weight_decay, maximize);
}

// A call about to run: its scalars, its lists for multi_tensor_apply, and the
// new step counts (empty for an operator without them).
template <size_t N>
struct Step {
  Scalars scalars;
  TensorLists<N> lists;
  std::vector<double> steps;
};

// What every kernel does before its loop: checks the call, reads its scalars,
// and (unless found_inf skips the step: nullopt) bumps the versions of what it
// writes and advances the step counts.
template <size_t N>
std::optional<Step<N>> begin_step(const OpCall& call, double lr) {
  call.check();
  const Scalars s = read_scalars(lr, call.lr_tensor, call.grad_scale, call.found_inf);
  if (s.skip) return std::nullopt;
  call.bump_versions();
  std::vector<double> steps;
  if (call.state_steps.has_value()) {
    advance_steps(*call.state_steps, call.found_inf);
    steps.reserve(call.state_steps->size());
    for (const Tensor& step : *call.state_steps) steps.push_back(step_value(step));
  }
  return Step<N>{s, {call.lists<N>(), OpCall::written<N>(), s.unscale_grads}, std::move(steps)};
}

}  // namespace fused_optim::cpu
