// CPU kernels of the fused optimizers: per-optimizer element loops over the
// generic multi-tensor apply, registered under the CPU dispatch key. The math
// is in rules.h; here are only loads, stores and per-tensor scalars.
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
#include "../versions.h"
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

std::vector<Tensor> vec(TensorList l) { return l.vec(); }

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

// ---------------------------------------------------------------- Momentum
void momentum_cpu(TensorList params, TensorList grads, TensorList momentum_buffers, double lr,
                  double momentum, double dampening, bool nesterov, double weight_decay,
                  bool maximize, bool first_step, const optional<Tensor>& lr_tensor,
                  const optional<Tensor>& grad_scale, const optional<Tensor>& found_inf,
                  const OptionalTensorList& model_params) {
  using namespace momentum_list;
  check_momentum_args(params, grads, momentum_buffers, momentum, lr_tensor, grad_scale, found_inf,
                      model_params);
  const Scalars s = read_scalars(lr, lr_tensor, grad_scale, found_inf);
  if (s.skip) return;
  bump_versions(
      {params, momentum_buffers, unscaled(grads, grad_scale), written_models(model_params)});
  TensorLists<kCount> args{{vec(params), vec(grads), vec(momentum_buffers), model_list(model_params)},
                           {true, false, true, true},
                           s.unscale_grads};
  with_flag(momentum != 0.0, [&](auto has_momentum) {
    with_flag(nesterov, [&](auto is_nesterov) {
      with_flag(first_step, [&](auto first) {
        // The first step sets the buffer without reading it.
        constexpr unsigned kRead = lists(kParam, kGrad) | (has_momentum && !first ? lists(kBuffer) : 0u);
        constexpr unsigned kWrite = lists(kParam) | (has_momentum ? lists(kBuffer) : 0u);
        multi_tensor_apply(args, [&](int64_t, auto chunk) {
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
void rmsprop_cpu(TensorList params, TensorList grads, TensorList square_avgs,
                 TensorList grad_avgs, TensorList momentum_buffers, TensorList state_steps,
                 double lr, double alpha,
                 double eps, double weight_decay, double momentum, bool centered, bool maximize,
                 const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
                 const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  using namespace rmsprop_list;
  check_rmsprop_args(params, grads, square_avgs, grad_avgs, momentum_buffers, state_steps, centered,
                     momentum, lr_tensor, grad_scale, found_inf, model_params);
  const Scalars s = read_scalars(lr, lr_tensor, grad_scale, found_inf);
  if (s.skip) return;
  bump_versions({params, square_avgs, grad_avgs, momentum_buffers, state_steps,
                 unscaled(grads, grad_scale), written_models(model_params)});
  advance_steps(state_steps, found_inf);
  TensorLists<kCount> args{{vec(params), vec(grads), vec(square_avgs), vec(grad_avgs),
                            vec(momentum_buffers), model_list(model_params)},
                           {true, false, true, true, true, true},
                           s.unscale_grads};
  with_flag(centered, [&](auto is_centered) {
    with_flag(momentum > 0.0, [&](auto has_momentum) {
      constexpr unsigned kState = lists(kSquareAvg) | (is_centered ? lists(kGradAvg) : 0u) |
                                  (has_momentum ? lists(kBuffer) : 0u);
      multi_tensor_apply(args, [&](int64_t, auto chunk) {
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
// Advances the step counts and returns their new values.
std::vector<double> advance(TensorList state_steps, const optional<Tensor>& found_inf) {
  advance_steps(state_steps, found_inf);
  std::vector<double> out;
  out.reserve(state_steps.size());
  for (const Tensor& step : state_steps) out.push_back(step_value(step));
  return out;
}

void adam_cpu(TensorList params, TensorList grads, TensorList exp_avgs, TensorList exp_avg_sqs,
              TensorList max_exp_avg_sqs, TensorList state_steps, double lr, double beta1,
              double beta2, double eps, double weight_decay, bool decoupled_weight_decay,
              bool amsgrad, bool bias_correction, bool maximize,
              const optional<Tensor>& lr_tensor, const optional<Tensor>& grad_scale,
              const optional<Tensor>& found_inf, const OptionalTensorList& model_params) {
  using namespace adam_list;
  check_adam_args(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, amsgrad,
                  lr_tensor, grad_scale, found_inf, model_params);
  const Scalars s = read_scalars(lr, lr_tensor, grad_scale, found_inf);
  if (s.skip) return;
  bump_versions({params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps,
                 unscaled(grads, grad_scale), written_models(model_params)});
  const auto steps = advance(state_steps, found_inf);
  const double l2 = decoupled_weight_decay ? 0.0 : weight_decay;
  const double decoupled = decoupled_weight_decay ? weight_decay : 0.0;
  TensorLists<kCount> args{{vec(params), vec(grads), vec(exp_avgs), vec(exp_avg_sqs),
                            vec(max_exp_avg_sqs), model_list(model_params)},
                           {true, false, true, true, true, true},
                           s.unscale_grads};
  with_flag(amsgrad, [&](auto use_max) {
    constexpr unsigned kState = lists(kExpAvg, kExpAvgSq) | (use_max ? lists(kMaxExpAvgSq) : 0u);
    multi_tensor_apply(args, [&](int64_t i, auto chunk) {
      using T = typename decltype(chunk)::opmath;
      with_lerp_direction<T>(1.0 - beta1, [&](auto from) {
        const AdamCoeffs<T> c =
            make_adam_coeffs(grad_prep<T>(s, l2, maximize), s.lr, beta1, beta2, eps, steps[i],
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
void diffgrad_cpu(TensorList params, TensorList grads, TensorList exp_avgs,
                  TensorList exp_avg_sqs, TensorList previous_grads, TensorList state_steps,
                  double lr, double beta1, double beta2, double eps, double weight_decay,
                  bool maximize, const optional<Tensor>& lr_tensor,
                  const optional<Tensor>& grad_scale, const optional<Tensor>& found_inf,
                  const OptionalTensorList& model_params) {
  using namespace diffgrad_list;
  check_diffgrad_args(params, grads, exp_avgs, exp_avg_sqs, previous_grads, state_steps, lr_tensor,
                      grad_scale, found_inf, model_params);
  const Scalars s = read_scalars(lr, lr_tensor, grad_scale, found_inf);
  if (s.skip) return;
  bump_versions({params, exp_avgs, exp_avg_sqs, previous_grads, state_steps,
                 unscaled(grads, grad_scale), written_models(model_params)});
  const auto steps = advance(state_steps, found_inf);
  TensorLists<kCount> args{{vec(params), vec(grads), vec(exp_avgs), vec(exp_avg_sqs),
                            vec(previous_grads), model_list(model_params)},
                           {true, false, true, true, true, true},
                           s.unscale_grads};
  constexpr unsigned kState = lists(kExpAvg, kExpAvgSq, kPreviousGrad);
  multi_tensor_apply(args, [&](int64_t i, auto chunk) {
    using T = typename decltype(chunk)::opmath;
    with_lerp_direction<T>(1.0 - beta1, [&](auto from) {
      const AdamCoeffs<T> c = make_adam_coeffs(grad_prep<T>(s, weight_decay, maximize), s.lr, beta1,
                                               beta2, eps, steps[i], /*bias_correction=*/true,
                                               /*decoupled_weight_decay=*/0.0, /*amsgrad=*/false);
      chunk.template update<lists(kParam, kGrad) | kState, lists(kParam) | kState>(
          [&](T(&x)[kCount]) {
            diffgrad_update<from>(x[kParam], x[kGrad], x[kExpAvg], x[kExpAvgSq], x[kPreviousGrad], c);
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
}

}  // namespace fused_optim::cpu
