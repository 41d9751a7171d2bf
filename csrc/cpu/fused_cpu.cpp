// CPU kernels of the fused optimizers, registered under the CPU dispatch key:
// each checks its call (checks.h), makes its rule's per-tensor coefficients,
// and runs the rule's element op over the generic multi-tensor apply
// (multi_tensor_cpu.h). The math is in rules.h.
#include <ATen/OpMathType.h>
#include <torch/library.h>

#include <math.h>

#include <optional>
#include <type_traits>

#include "../checks.h"
#include "../dense_lists.h"
#include "../op_lists.h"
#include "../rules.h"
#include "../state_steps.h"
#include "multi_tensor_cpu.h"

// glibc's libmvec has SIMD versions of exp; declaring them lets the compiler
// vectorize diffGrad's friction sigmoid (glibc declares them only under -ffast-math).
extern "C" float expf(float) __attribute__((simd("notinbranch")));
extern "C" double exp(double) __attribute__((simd("notinbranch")));

namespace fused_optim::cpu {
namespace {

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

Scalars read_scalars(double lr, const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
                     const optional<Tensor>& found_inf) {
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

// ---------------------------------------------------------------- Momentum
void momentum_cpu(TensorList params, TensorList grads, TensorList momentum_buffers, double lr,
                  double momentum, double dampening, bool nesterov, double weight_decay,
                  bool maximize, bool first_step, const optional<Tensor>& lr_tensor,
                  const optional<Tensor>& grad_scale, const optional<Tensor>& found_inf,
                  const OptionalTensorList& model_params) {
  using namespace momentum_list;
  auto step = begin_step<kCount>(
      {"optimizers::momentum_", params, grads,
       {{"momentum_buffers", momentum_buffers, momentum != 0.0,
         momentum_requires_buffers(momentum)}},
       std::nullopt, lr_tensor, grad_scale, found_inf, model_params},
      lr);
  if (!step) return;
  const Scalars& s = step->scalars;
  with_flag(momentum != 0.0, [&](auto has_momentum) {
    with_flag(nesterov, [&](auto is_nesterov) {
      with_flag(first_step, [&](auto first) {
        // The first step sets the buffer without reading it.
        constexpr unsigned kRead = lists(kParam, kGrad) | (has_momentum && !first ? lists(kBuffer) : 0u);
        constexpr unsigned kWrite = lists(kParam) | (has_momentum ? lists(kBuffer) : 0u);
        multi_tensor_apply(step->lists, [&](int64_t, auto chunk) {
          using T = typename decltype(chunk)::opmath;
          const MomentumCoeffs<T> c = make_momentum_coeffs(grad_prep<T>(s, weight_decay, maximize),
                                                           s.lr, momentum, dampening);
          chunk.template update<kRead, kWrite>([&](T(&x)[kCount]) {
            momentum_update<has_momentum, is_nesterov, first>(x[kParam], x[kGrad], x[kBuffer], c);
          });
        });
      });
    });
  });
}

// ---------------------------------------------------------------- RMSProp
void rmsprop_cpu(TensorList params, TensorList grads, TensorList square_avgs, TensorList grad_avgs,
                 TensorList momentum_buffers, TensorList state_steps, double lr, double alpha,
                 double eps, double weight_decay, double momentum, bool centered, bool maximize,
                 const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
                 const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  using namespace rmsprop_list;
  auto step = begin_step<kCount>(
      {"optimizers::rmsprop_", params, grads,
       {{"square_avgs", square_avgs},
        {"grad_avgs", grad_avgs, centered},
        {"momentum_buffers", momentum_buffers, momentum > 0.0}},
       state_steps, lr_tensor, grad_scale, found_inf, model_params},
      lr);
  if (!step) return;
  const Scalars& s = step->scalars;
  with_flag(centered, [&](auto is_centered) {
    with_flag(momentum > 0.0, [&](auto has_momentum) {
      constexpr unsigned kState = lists(kSquareAvg) | (is_centered ? lists(kGradAvg) : 0u) |
                                  (has_momentum ? lists(kBuffer) : 0u);
      multi_tensor_apply(step->lists, [&](int64_t, auto chunk) {
        using T = typename decltype(chunk)::opmath;
        with_lerp_direction<T>(1.0 - alpha, [&](auto from) {
          const RMSPropCoeffs<T> c =
              make_rmsprop_coeffs(grad_prep<T>(s, weight_decay, maximize), s.lr, alpha, eps,
                                  has_momentum ? momentum : 0.0, is_centered);
          chunk.template update<lists(kParam, kGrad) | kState, lists(kParam) | kState>(
              [&](T(&x)[kCount]) {
                rmsprop_update<from>(x[kParam], x[kGrad], x[kSquareAvg], x[kGradAvg], x[kBuffer], c);
              });
        });
      });
    });
  });
}

// ---------------------------------------------------------------- Adam / AdamW
void adam_cpu(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
              TensorList max_exp_avg_sqs, TensorList state_steps, double lr, double beta1,
              double beta2, double eps, double weight_decay, bool decoupled_weight_decay,
              bool amsgrad, bool bias_correction, bool maximize,
              const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
              const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  using namespace adam_list;
  auto step = begin_step<kCount>(
      {"optimizers::adam_", params, grads,
       {{"exp_avgs", exp_avgs}, {"exp_avg_sqs", exp_avg_sqs}, {"max_exp_avg_sqs", max_exp_avg_sqs, amsgrad}},
       state_steps, lr_tensor, grad_scale, found_inf, model_params},
      lr);
  if (!step) return;
  const Scalars& s = step->scalars;
  const double l2 = decoupled_weight_decay ? 0.0 : weight_decay;
  const double decoupled = decoupled_weight_decay ? weight_decay : 0.0;
  with_flag(amsgrad, [&](auto use_max) {
    constexpr unsigned kState = lists(kExpAvg, kExpAvgSq) | (use_max ? lists(kMaxExpAvgSq) : 0u);
    multi_tensor_apply(step->lists, [&](int64_t i, auto chunk) {
      using T = typename decltype(chunk)::opmath;
      with_lerp_direction<T>(1.0 - beta1, [&](auto from) {
        const AdamCoeffs<T> c =
            make_adam_coeffs(grad_prep<T>(s, l2, maximize), s.lr, beta1, beta2, eps, step->steps[i],
                             bias_correction, decoupled, use_max);
        chunk.template update<lists(kParam, kGrad) | kState, lists(kParam) | kState>(
            [&](T(&x)[kCount]) {
              adam_update<from>(x[kParam], x[kGrad], x[kExpAvg], x[kExpAvgSq], x[kMaxExpAvgSq], c);
            });
      });
    });
  });
}

// ---------------------------------------------------------------- diffGrad
void diffgrad_cpu(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
                  TensorList previous_grads, TensorList state_steps, double lr, double beta1,
                  double beta2, double eps, double weight_decay, bool maximize,
                  const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
                  const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  using namespace diffgrad_list;
  auto step = begin_step<kCount>(
      {"optimizers::diffgrad_", params, grads,
       {{"exp_avgs", exp_avgs}, {"exp_avg_sqs", exp_avg_sqs}, {"previous_grads", previous_grads}},
       state_steps, lr_tensor, grad_scale, found_inf, model_params},
      lr);
  if (!step) return;
  const Scalars& s = step->scalars;
  constexpr unsigned kState = lists(kExpAvg, kExpAvgSq, kPreviousGrad);
  multi_tensor_apply(step->lists, [&](int64_t i, auto chunk) {
    using T = typename decltype(chunk)::opmath;
    with_lerp_direction<T>(1.0 - beta1, [&](auto from) {
      const AdamCoeffs<T> c = make_adam_coeffs(grad_prep<T>(s, weight_decay, maximize), s.lr, beta1,
                                               beta2, eps, step->steps[i], /*bias_correction=*/true,
                                               /*decoupled_weight_decay=*/0.0, /*amsgrad=*/false);
      chunk.template update<lists(kParam, kGrad) | kState, lists(kParam) | kState>(
          [&](T(&x)[kCount]) {
            diffgrad_update<from>(x[kParam], x[kGrad], x[kExpAvg], x[kExpAvgSq], x[kPreviousGrad], c);
          });
    });
  });
}

// ---------------------------------------------------------------- AdaGrad
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

// ---------------------------------------------------------------- RAdam
void radam_cpu(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
               TensorList state_steps, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool decoupled_weight_decay, bool maximize,
               const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
               const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  using namespace radam_list;
  auto step = begin_step<kCount>(
      {"optimizers::radam_", params, grads, {{"exp_avgs", exp_avgs}, {"exp_avg_sqs", exp_avg_sqs}},
       state_steps, lr_tensor, grad_scale, found_inf, model_params},
      lr);
  if (!step) return;
  const Scalars& s = step->scalars;
  const double l2 = decoupled_weight_decay ? 0.0 : weight_decay;
  const double decoupled = decoupled_weight_decay ? weight_decay : 0.0;
  constexpr unsigned kUsed = lists(kParam, kGrad, kExpAvg, kExpAvgSq);
  multi_tensor_apply(step->lists, [&](int64_t i, auto chunk) {
    using T = typename decltype(chunk)::opmath;
    const RAdamStepScalars st = radam_step_scalars(s.lr, beta1, beta2, step->steps[i]);
    with_flag(st.rectified, [&](auto rectified) {
      with_lerp_direction<T>(1.0 - beta1, [&](auto from) {
        const RAdamCoeffs<T> c =
            make_radam_coeffs(grad_prep<T>(s, l2, maximize), s.lr, beta1, beta2, eps, st, decoupled);
        chunk.template update<kUsed, kUsed & ~lists(kGrad)>([&](T(&x)[kCount]) {
          radam_update<rectified, from>(x[kParam], x[kGrad], x[kExpAvg], x[kExpAvgSq], c);
        });
      });
    });
  });
}

// ---------------------------------------------------------------- AdaBelief
void adabelief_cpu(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_vars,
                   TensorList max_exp_avg_vars, TensorList state_steps, double lr, double beta1,
                   double beta2, double eps, double weight_decay, bool decoupled_weight_decay,
                   bool amsgrad, bool maximize, const optional<Tensor>& lr_tensor,
                   const optional<Tensor>& grad_scale, const optional<Tensor>& found_inf,
                   const OptionalTensorList& model_params) {
  using namespace adabelief_list;
  auto step = begin_step<kCount>(
      {"optimizers::adabelief_", params, grads,
       {{"exp_avgs", exp_avgs},
        {"exp_avg_vars", exp_avg_vars},
        {"max_exp_avg_vars", max_exp_avg_vars, amsgrad}},
       state_steps, lr_tensor, grad_scale, found_inf, model_params},
      lr);
  if (!step) return;
  const Scalars& s = step->scalars;
  const double l2 = decoupled_weight_decay ? 0.0 : weight_decay;
  const double decoupled = decoupled_weight_decay ? weight_decay : 0.0;
  with_flag(amsgrad, [&](auto use_max) {
    constexpr unsigned kState = lists(kExpAvg, kExpAvgVar) | (use_max ? lists(kMaxExpAvgVar) : 0u);
    multi_tensor_apply(step->lists, [&](int64_t i, auto chunk) {
      using T = typename decltype(chunk)::opmath;
      with_lerp_direction<T>(1.0 - beta1, [&](auto from) {
        const AdamCoeffs<T> c = make_adam_coeffs(grad_prep<T>(s, l2, maximize), s.lr, beta1, beta2,
                                                 eps, step->steps[i], /*bias_correction=*/true,
                                                 decoupled, use_max);
        chunk.template update<lists(kParam, kGrad) | kState, lists(kParam) | kState>(
            [&](T(&x)[kCount]) {
              adabelief_update<from>(x[kParam], x[kGrad], x[kExpAvg], x[kExpAvgVar],
                                     x[kMaxExpAvgVar], c);
            });
      });
    });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(optimizers, CPU, m) {
  m.impl("momentum_", &momentum_cpu);
  m.impl("rmsprop_", &rmsprop_cpu);
  m.impl("adam_", &adam_cpu);
  m.impl("diffgrad_", &diffgrad_cpu);
  m.impl("adagrad_", &adagrad_cpu);
  m.impl("radam_", &radam_cpu);
  m.impl("adabelief_", &adabelief_cpu);
}

}  // namespace fused_optim::cpu
