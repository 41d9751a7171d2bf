// CPU kernels of the fused optimizers: per-optimizer element loops over the
// generic multi-tensor apply, registered under the CPU dispatch key. The math
// is in rules.h; here are only loads, stores and per-tensor scalars.
#include <ATen/OpMathType.h>
#include <torch/library.h>

#include <math.h>

#include <optional>
#include <type_traits>

#include "../checks.h"
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

// Turns a runtime flag into a compile-time one, so each loop is specialized and
// vectorized without per-element branches.
template <typename F>
void with_flag(bool flag, const F& f) {
  if (flag)
    f(std::true_type{});
  else
    f(std::false_type{});
}

// torch's lerp starts from the nearer end (rules.h, make_lerp). Here that choice
// becomes a compile-time constant of the element loop run by f: a run-time
// select keeps GCC from vectorizing the loop.
template <typename T, typename F>
void with_lerp_direction(LerpCoeffs<T>& lerp, const F& f) {
  with_flag(lerp.from_end, [&](auto from_end) {
    lerp.from_end = from_end;
    f();
  });
}

std::vector<Tensor> vec(TensorList l) { return l.vec(); }

std::vector<Tensor> models(const OptionalTensorList& model_params) {
  return model_params.has_value() ? model_params->vec() : std::vector<Tensor>{};
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

// ---------------------------------------------------------------- Momentum
void momentum_cpu(TensorList params, TensorList grads, TensorList momentum_buffers, double lr,
                  double momentum, double dampening, bool nesterov, double weight_decay,
                  bool maximize, bool first_step, const optional<Tensor>& lr_tensor,
                  const optional<Tensor>& grad_scale, const optional<Tensor>& found_inf,
                  const OptionalTensorList& model_params) {
  check_momentum_args(params, grads, momentum_buffers, momentum, lr_tensor, grad_scale, found_inf,
                      model_params);
  const Scalars s = read_scalars(lr, lr_tensor, grad_scale, found_inf);
  if (s.skip) return;
  bump_versions(
      {params, momentum_buffers, unscaled(grads, grad_scale), written_models(model_params)});
  TensorLists<3> args{{vec(params), vec(grads), vec(momentum_buffers)}, {true, false, true},
                      models(model_params), s.unscale_grads};
  with_flag(momentum != 0.0, [&](auto has_momentum) {
    with_flag(nesterov, [&](auto is_nesterov) {
      with_flag(first_step, [&](auto first) {
        multi_tensor_apply(args, [&](int64_t, auto chunk, int64_t n) {
          using T = typename decltype(chunk)::opmath;
          const MomentumCoeffs<T> c = make_momentum_coeffs(grad_prep<T>(s, weight_decay, maximize),
                                                           s.lr, momentum, dampening);
          auto* __restrict p = chunk.ptrs[0];
          const auto* __restrict g = chunk.grad;
          auto* __restrict buf = chunk.ptrs[2];
          FUSED_OPTIM_LISTS_DO_NOT_OVERLAP
          for (int64_t j = 0; j < n; ++j) {
            T pj = p[j];
            T bj = (has_momentum && !first) ? T(buf[j]) : T(0);
            momentum_update<decltype(has_momentum)::value, decltype(is_nesterov)::value,
                            decltype(first)::value>(pj, T(g[j]), bj, c);
            store_param(p, chunk.model, j, pj);
            if constexpr (has_momentum) buf[j] = bj;
          }
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
  check_rmsprop_args(params, grads, square_avgs, grad_avgs, momentum_buffers, state_steps, centered,
                     momentum, lr_tensor, grad_scale, found_inf, model_params);
  const Scalars s = read_scalars(lr, lr_tensor, grad_scale, found_inf);
  if (s.skip) return;
  bump_versions({params, square_avgs, grad_avgs, momentum_buffers, state_steps,
                 unscaled(grads, grad_scale), written_models(model_params)});
  advance_steps(state_steps, found_inf);
  TensorLists<5> args{
      {vec(params), vec(grads), vec(square_avgs), vec(grad_avgs), vec(momentum_buffers)},
      {true, false, true, true, true},
      models(model_params), s.unscale_grads};
  with_flag(centered, [&](auto is_centered) {
    with_flag(momentum > 0.0, [&](auto has_momentum) {
      multi_tensor_apply(args, [&](int64_t, auto chunk, int64_t n) {
        using T = typename decltype(chunk)::opmath;
        RMSPropCoeffs<T> c =
            make_rmsprop_coeffs(grad_prep<T>(s, weight_decay, maximize), s.lr, alpha, eps,
                                has_momentum ? momentum : 0.0, is_centered);
        auto* __restrict p = chunk.ptrs[0];
        const auto* __restrict g = chunk.grad;
        auto* __restrict sq = chunk.ptrs[2];
        auto* __restrict ga = chunk.ptrs[3];
        auto* __restrict buf = chunk.ptrs[4];
        with_lerp_direction(c.grad_avg_lerp, [&] {
          FUSED_OPTIM_LISTS_DO_NOT_OVERLAP
          for (int64_t j = 0; j < n; ++j) {
            T pj = p[j], sqj = sq[j];
            T gaj = is_centered ? T(ga[j]) : T(0);
            T bj = has_momentum ? T(buf[j]) : T(0);
            rmsprop_update(pj, T(g[j]), sqj, gaj, bj, c);
            store_param(p, chunk.model, j, pj);
            sq[j] = sqj;
            if constexpr (is_centered) ga[j] = gaj;
            if constexpr (has_momentum) buf[j] = bj;
          }
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
  check_adam_args(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, amsgrad,
                  lr_tensor, grad_scale, found_inf, model_params);
  const Scalars s = read_scalars(lr, lr_tensor, grad_scale, found_inf);
  if (s.skip) return;
  bump_versions({params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps,
                 unscaled(grads, grad_scale), written_models(model_params)});
  const auto steps = advance(state_steps, found_inf);
  const double l2 = decoupled_weight_decay ? 0.0 : weight_decay;
  const double decoupled = decoupled_weight_decay ? weight_decay : 0.0;
  TensorLists<5> args{
      {vec(params), vec(grads), vec(exp_avgs), vec(exp_avg_sqs), vec(max_exp_avg_sqs)},
      {true, false, true, true, true},
      models(model_params), s.unscale_grads};
  with_flag(amsgrad, [&](auto use_max) {
    multi_tensor_apply(args, [&](int64_t i, auto chunk, int64_t n) {
      using T = typename decltype(chunk)::opmath;
      AdamCoeffs<T> c = make_adam_coeffs(grad_prep<T>(s, l2, maximize), s.lr, beta1, beta2, eps,
                                         steps[i], bias_correction, decoupled, use_max);
      auto* __restrict p = chunk.ptrs[0];
      const auto* __restrict g = chunk.grad;
      auto* __restrict m = chunk.ptrs[2];
      auto* __restrict v = chunk.ptrs[3];
      auto* __restrict vmax = chunk.ptrs[4];
      with_lerp_direction(c.exp_avg_lerp, [&] {
        FUSED_OPTIM_LISTS_DO_NOT_OVERLAP
        for (int64_t j = 0; j < n; ++j) {
          T pj = p[j], mj = m[j], vj = v[j];
          T vmaxj = use_max ? T(vmax[j]) : T(0);
          adam_update(pj, T(g[j]), mj, vj, vmaxj, c);
          store_param(p, chunk.model, j, pj);
          m[j] = mj;
          v[j] = vj;
          if constexpr (use_max) vmax[j] = vmaxj;
        }
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
  check_diffgrad_args(params, grads, exp_avgs, exp_avg_sqs, previous_grads, state_steps, lr_tensor,
                      grad_scale, found_inf, model_params);
  const Scalars s = read_scalars(lr, lr_tensor, grad_scale, found_inf);
  if (s.skip) return;
  bump_versions({params, exp_avgs, exp_avg_sqs, previous_grads, state_steps,
                 unscaled(grads, grad_scale), written_models(model_params)});
  const auto steps = advance(state_steps, found_inf);
  TensorLists<5> args{
      {vec(params), vec(grads), vec(exp_avgs), vec(exp_avg_sqs), vec(previous_grads)},
      {true, false, true, true, true},
      models(model_params), s.unscale_grads};
  multi_tensor_apply(args, [&](int64_t i, auto chunk, int64_t n) {
    using T = typename decltype(chunk)::opmath;
    AdamCoeffs<T> c =
        make_adam_coeffs(grad_prep<T>(s, weight_decay, maximize), s.lr, beta1, beta2, eps, steps[i],
                         /*bias_correction=*/true, /*decoupled_weight_decay=*/0.0, /*amsgrad=*/false);
    auto* __restrict p = chunk.ptrs[0];
    const auto* __restrict g = chunk.grad;
    auto* __restrict m = chunk.ptrs[2];
    auto* __restrict v = chunk.ptrs[3];
    auto* __restrict prev = chunk.ptrs[4];
    with_lerp_direction(c.exp_avg_lerp, [&] {
      FUSED_OPTIM_LISTS_DO_NOT_OVERLAP
      for (int64_t j = 0; j < n; ++j) {
        T pj = p[j], mj = m[j], vj = v[j], prevj = prev[j];
        diffgrad_update(pj, T(g[j]), mj, vj, prevj, c);
        store_param(p, chunk.model, j, pj);
        m[j] = mj;
        v[j] = vj;
        prev[j] = prevj;
      }
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
