// Per-element update rules: the one place where each optimizer's math lives.
//
// Every path (the C++ CPU loop and the CUDA kernels) calls these functions, so a
// rule is written once. The header includes no ATen/torch code: the CUDA kernel
// files include it and are compiled with plain nvcc.
//
// T is the arithmetic ("opmath") type: float for fp32/bf16/fp16 params, double
// for fp64 params. Values are loaded into T, updated here, and stored by the
// caller, which rounds once for low-precision params.
//
// The rules are those of shared/docs/optimizers.md; torch.optim is matched where
// it has the same rule. Each rule's section also names its operator's tensor
// lists (adam_list::kExpAvg, ...) in the order of its schema (ops.cpp), which
// its element op indexes on both backends (x[kExpAvg]); see op_lists.h.
#pragma once

// Always inlined: a rule left as a call in an element loop keeps the loop from
// being vectorized (GCC's inliner gave up on AdaBelief's in a large kernel).
#if defined(__CUDACC__)
#define OPT_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define OPT_HD inline __attribute__((always_inline))
#else
#define OPT_HD inline
#endif

#include <math.h>

namespace fused_optim {

OPT_HD float opt_sqrt(float x) { return sqrtf(x); }
OPT_HD double opt_sqrt(double x) { return sqrt(x); }
OPT_HD float opt_exp(float x) { return expf(x); }
OPT_HD double opt_exp(double x) { return exp(x); }
OPT_HD float opt_abs(float x) { return fabsf(x); }
OPT_HD double opt_abs(double x) { return fabs(x); }
template <typename T>
OPT_HD T opt_max(T a, T b) {
  // NaN in v propagates (as torch.maximum does) instead of being dropped.
  return (a != a || a > b) ? a : b;
}

// Steps 1 and 2 of every rule: maximize, then L2 weight decay (not decoupled).
// inv_grad_scale undoes AMP loss scaling (1 when no GradScaler is used).
template <typename T>
struct GradPrep {
  T grad_factor;   // 1/grad_scale, negated for maximize
  T weight_decay;  // L2 coefficient; 0 for decoupled decay (AdamW) or none
};

// maximize is folded into the unscaling factor: -(g * s) == g * (-s) exactly, and a
// per-element `if (maximize) g = -g` keeps GCC from vectorizing the bf16 CPU loops.
template <typename T>
OPT_HD GradPrep<T> make_grad_prep(double inv_grad_scale, double weight_decay, bool maximize) {
  return {T(maximize ? -inv_grad_scale : inv_grad_scale), T(weight_decay)};
}

// A weight decay as the rules take it: added to the grad (L2, in GradPrep), or
// decoupled (applied to p, as AdamW): one of the two is zero.
struct WeightDecay {
  double l2;
  double decoupled;
};

OPT_HD WeightDecay split_weight_decay(double weight_decay, bool decoupled) {
  return decoupled ? WeightDecay{0.0, weight_decay} : WeightDecay{weight_decay, 0.0};
}

template <typename T>
OPT_HD T prepare_grad(T g, T p, const GradPrep<T>& c) {
  g = g * c.grad_factor;
  if (c.weight_decay != T(0)) g = g + c.weight_decay * p;
  return g;
}

// A moving average a <- a + w (b - a), computed as torch.lerp is (torch.optim's
// exp_avg.lerp_(g, 1 - beta1)): from a when w < 0.5, else from b as
// b - (b - a)(1 - w). Beyond matching torch's rounding, this gives its NaN where
// a and b are infinite (inf - inf), where beta*a + (1 - beta)*b would give inf.
template <typename T>
struct LerpCoeffs {
  T coeff;        // w, or w - 1 from b
  bool from_end;  // w >= 0.5: start from b
};

template <typename T>
OPT_HD LerpCoeffs<T> make_lerp(double weight) {
  const T w = T(weight);
  const bool from_end = !(opt_abs(w) < T(0.5));
  return {from_end ? w - T(1) : w, from_end};
}

// Where lerp starts: read from the coefficients (the CUDA kernels), or fixed at
// compile time (the CPU loops: a run-time select there keeps GCC from
// vectorizing them). Every rule that calls lerp passes kFrom on.
enum class LerpFrom { kRuntime, kStart, kEnd };

template <LerpFrom kFrom = LerpFrom::kRuntime, typename T>
OPT_HD T lerp(T a, T b, const LerpCoeffs<T>& c) {
  const bool from_end = kFrom == LerpFrom::kRuntime ? c.from_end : kFrom == LerpFrom::kEnd;
  return (from_end ? b : a) + c.coeff * (b - a);
}

// ---------------------------------------------------------------- Momentum
namespace momentum_list {
enum : int { kParam, kGrad, kBuffer, kModelParam, kCount };
}

// torch.optim.SGD semantics. Without momentum it is plain gradient descent and
// `buf` is not touched; on the first step buf = g, undampened, as torch does.
// The flags are compile-time: run-time selects on them keep GCC from
// vectorizing the fp16 CPU loop.
template <typename T>
struct MomentumCoeffs {
  GradPrep<T> prep;
  T lr;
  T momentum;
  T one_minus_dampening;
};

template <typename T>
OPT_HD MomentumCoeffs<T> make_momentum_coeffs(const GradPrep<T>& prep, double lr, double momentum,
                                              double dampening) {
  return {prep, T(lr), T(momentum), T(1.0 - dampening)};
}

template <bool kHasMomentum, bool kNesterov, bool kFirstStep, typename T>
OPT_HD void momentum_update(T& p, T g, T& buf, const MomentumCoeffs<T>& c) {
  g = prepare_grad(g, p, c.prep);
  T d = g;
  if constexpr (kHasMomentum) {
    buf = kFirstStep ? g : c.momentum * buf + c.one_minus_dampening * g;
    d = kNesterov ? g + c.momentum * buf : buf;
  }
  p = p - c.lr * d;
}

// ---------------------------------------------------------------- RMSProp
namespace rmsprop_list {
enum : int { kParam, kGrad, kSquareAvg, kGradAvg, kBuffer, kModelParam, kCount };
}

// torch.optim.RMSprop semantics. grad_avg is used only when centered, buf only
// when momentum > 0.
template <typename T>
struct RMSPropCoeffs {
  GradPrep<T> prep;
  T lr;
  T alpha;
  T one_minus_alpha;  // computed in double: 1 - float(0.999) is off by 1.3e-5
  LerpCoeffs<T> grad_avg_lerp;  // weight 1 - alpha
  T eps;
  T momentum;
  bool centered;
};

template <typename T>
OPT_HD RMSPropCoeffs<T> make_rmsprop_coeffs(const GradPrep<T>& prep, double lr, double alpha, double eps,
                                            double momentum, bool centered) {
  return {prep,   T(lr),       T(alpha), T(1.0 - alpha), make_lerp<T>(1.0 - alpha),
          T(eps), T(momentum), centered};
}

template <LerpFrom kFrom = LerpFrom::kRuntime, typename T>
OPT_HD void rmsprop_update(T& p, T g, T& square_avg, T& grad_avg, T& buf,
                           const RMSPropCoeffs<T>& c) {
  g = prepare_grad(g, p, c.prep);
  square_avg = c.alpha * square_avg + c.one_minus_alpha * g * g;
  T avg;
  if (c.centered) {
    grad_avg = lerp<kFrom>(grad_avg, g, c.grad_avg_lerp);
    avg = opt_sqrt(square_avg - grad_avg * grad_avg) + c.eps;
  } else {
    avg = opt_sqrt(square_avg) + c.eps;
  }
  if (c.momentum > T(0)) {
    buf = c.momentum * buf + g / avg;
    p = p - c.lr * buf;
  } else {
    p = p - c.lr * g / avg;
  }
}

// ---------------------------------------------------------------- step scalars
// Bias-correction scalars from the step count, in double like torch.
struct AdamStepScalars {
  double step_size;
  double inv_bc2_sqrt;
};

OPT_HD AdamStepScalars adam_step_scalars(double lr, double beta1, double beta2, double step,
                                         bool bias_correction) {
  if (!bias_correction) return {lr, 1.0};
  const double bc1 = 1.0 - pow(beta1, step);
  const double bc2 = 1.0 - pow(beta2, step);
  return {lr / bc1, 1.0 / sqrt(bc2)};
}

// ---------------------------------------------------------------- Adam / AdamW
namespace adam_list {
enum : int { kParam, kGrad, kExpAvg, kExpAvgSq, kMaxExpAvgSq, kModelParam, kCount };
}

// One rule for Adam and AdamW, with or without bias correction:
//   p = p * decay                      (AdamW: 1 - lr*wd; otherwise 1)
//   p = p - step_size * m / (sqrt(v) * inv_bc2_sqrt + eps)
// where step_size = lr / bc1 and inv_bc2_sqrt = 1 / sqrt(bc2) with bias
// correction, and lr and 1 without. make_adam_coeffs computes these per tensor
// from its step count (on the host, or in the CUDA kernel from a device step).
template <typename T>
struct AdamCoeffs {
  GradPrep<T> prep;
  T beta2;
  LerpCoeffs<T> exp_avg_lerp;  // weight 1 - beta1, computed in double as torch does
  T one_minus_beta2;
  T eps;
  T step_size;
  T inv_bc2_sqrt;
  T decay;  // decoupled weight decay factor
  bool amsgrad;
};

// decoupled_weight_decay: AdamW's coefficient (0 for Adam and diffGrad, whose
// L2 decay is in prep).
template <typename T>
OPT_HD AdamCoeffs<T> make_adam_coeffs(const GradPrep<T>& prep, double lr, double beta1, double beta2,
                                      double eps, double step, bool bias_correction,
                                      double decoupled_weight_decay, bool amsgrad) {
  const AdamStepScalars st = adam_step_scalars(lr, beta1, beta2, step, bias_correction);
  return {prep,
          T(beta2),
          make_lerp<T>(1.0 - beta1),
          T(1.0 - beta2),
          T(eps),
          T(st.step_size),
          T(st.inv_bc2_sqrt),
          T(1.0 - lr * decoupled_weight_decay),
          amsgrad};
}

template <typename T>
OPT_HD T adam_denominator(T v, const AdamCoeffs<T>& c) {
  return opt_sqrt(v) * c.inv_bc2_sqrt + c.eps;
}

template <LerpFrom kFrom = LerpFrom::kRuntime, typename T>
OPT_HD void adam_moments(T g, T& m, T& v, const AdamCoeffs<T>& c) {
  m = lerp<kFrom>(m, g, c.exp_avg_lerp);
  v = c.beta2 * v + c.one_minus_beta2 * g * g;
}

template <LerpFrom kFrom = LerpFrom::kRuntime, typename T>
OPT_HD void adam_update(T& p, T g, T& m, T& v, T& v_max, const AdamCoeffs<T>& c) {
  g = prepare_grad(g, p, c.prep);
  p = p * c.decay;
  adam_moments<kFrom>(g, m, v, c);
  T v_used = v;
  if (c.amsgrad) {
    v_max = opt_max(v_max, v);
    v_used = v_max;
  }
  p = p - c.step_size * m / adam_denominator(v_used, c);
}

// ---------------------------------------------------------------- diffGrad
namespace diffgrad_list {
enum : int { kParam, kGrad, kExpAvg, kExpAvgSq, kPreviousGrad, kModelParam, kCount };
}

// Adam (with bias correction, no amsgrad, no decoupled decay) whose step is
// scaled per element by the friction xi = sigmoid(|g_prev - g|). The step is
// step_size * xi * m / denom, computed as step_size * m / ((1 + exp(-|dg|)) * denom):
// the same quotient with one division instead of two, which keeps the CPU loop
// memory-bound.
template <typename T>
OPT_HD T diffgrad_inverse_friction(T g_prev, T g) {
  return T(1) + opt_exp(-opt_abs(g_prev - g));  // 1 / xi
}

template <LerpFrom kFrom = LerpFrom::kRuntime, typename T>
OPT_HD void diffgrad_update(T& p, T g, T& m, T& v, T& g_prev, const AdamCoeffs<T>& c) {
  g = prepare_grad(g, p, c.prep);
  adam_moments<kFrom>(g, m, v, c);
  p = p - c.step_size * m / (diffgrad_inverse_friction(g_prev, g) * adam_denominator(v, c));
  g_prev = g;
}

// ---------------------------------------------------------------- AdaGrad
namespace adagrad_list {
enum : int { kParam, kGrad, kSum, kModelParam, kCount };
}

// torch.optim.Adagrad semantics: the lr decays with the step count, and the
// sum of squared grads only grows.
template <typename T>
struct AdagradCoeffs {
  GradPrep<T> prep;
  T clr;  // lr / (1 + (step - 1) * lr_decay)
  T eps;
};

template <typename T>
OPT_HD AdagradCoeffs<T> make_adagrad_coeffs(const GradPrep<T>& prep, double lr, double lr_decay,
                                            double eps, double step) {
  return {prep, T(lr / (1.0 + (step - 1.0) * lr_decay)), T(eps)};
}

template <typename T>
OPT_HD void adagrad_update(T& p, T g, T& sum, const AdagradCoeffs<T>& c) {
  g = prepare_grad(g, p, c.prep);
  sum = sum + g * g;
  p = p - c.clr * (g / (opt_sqrt(sum) + c.eps));
}

// ---------------------------------------------------------------- RAdam
namespace radam_list {
enum : int { kParam, kGrad, kExpAvg, kExpAvgSq, kModelParam, kCount };
}

// torch.optim.RAdam semantics. Adam's moments; while the variance of the
// adaptive lr is intractable (rho_t <= 5, the first steps) the step is the
// bias-corrected momentum alone. One step size per tensor, from its step count:
//   rectified:  p -= lr * r * sqrt(bc2) / bc1 * m / (sqrt(v) + eps)
//   otherwise:  p -= lr / bc1 * m
struct RAdamStepScalars {
  double step_size;
  bool rectified;
};

OPT_HD RAdamStepScalars radam_step_scalars(double lr, double beta1, double beta2, double step) {
  const double bc1 = 1.0 - pow(beta1, step);
  const double beta2_t = pow(beta2, step);
  const double bc2 = 1.0 - beta2_t;
  const double rho_inf = 2.0 / (1.0 - beta2) - 1.0;
  const double rho_t = rho_inf - 2.0 * step * beta2_t / bc2;
  if (!(rho_t > 5.0)) return {lr / bc1, false};
  const double r =
      sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t));
  return {lr * r * sqrt(bc2) / bc1, true};
}

template <typename T>
struct RAdamCoeffs {
  GradPrep<T> prep;
  T beta2;
  LerpCoeffs<T> exp_avg_lerp;  // weight 1 - beta1
  T one_minus_beta2;
  T eps;
  T step_size;
  T decay;  // decoupled weight decay factor
};

// decoupled_weight_decay: the coefficient of decay applied to p (0 with L2 decay, which is in prep).
template <typename T>
OPT_HD RAdamCoeffs<T> make_radam_coeffs(const GradPrep<T>& prep, double lr, double beta1, double beta2,
                                        double eps, const RAdamStepScalars& st,
                                        double decoupled_weight_decay) {
  return {prep,   T(beta2),         make_lerp<T>(1.0 - beta1),           T(1.0 - beta2),
          T(eps), T(st.step_size), T(1.0 - lr * decoupled_weight_decay)};
}

// kRectified: the tensor's RAdamStepScalars::rectified, a compile-time flag of the loop.
template <bool kRectified, LerpFrom kFrom = LerpFrom::kRuntime, typename T>
OPT_HD void radam_update(T& p, T g, T& m, T& v, const RAdamCoeffs<T>& c) {
  g = prepare_grad(g, p, c.prep);
  p = p * c.decay;
  m = lerp<kFrom>(m, g, c.exp_avg_lerp);
  v = c.beta2 * v + c.one_minus_beta2 * g * g;
  if constexpr (kRectified)
    p = p - c.step_size * m / (opt_sqrt(v) + c.eps);
  else
    p = p - c.step_size * m;
}

// ---------------------------------------------------------------- AdaBelief
namespace adabelief_list {
enum : int { kParam, kGrad, kExpAvg, kExpAvgVar, kMaxExpAvgVar, kModelParam, kCount };
}

// The authors' adabelief-pytorch 0.2 with rectify=False: Adam whose second
// moment is the variance of g around its moving average m (the updated one),
// with eps added into the state at every step. Adam's coefficients
// (make_adam_coeffs: decoupled or L2 decay, amsgrad, bias correction).
template <LerpFrom kFrom = LerpFrom::kRuntime, typename T>
OPT_HD void adabelief_update(T& p, T g, T& m, T& s, T& s_max, const AdamCoeffs<T>& c) {
  g = prepare_grad(g, p, c.prep);
  p = p * c.decay;
  m = lerp<kFrom>(m, g, c.exp_avg_lerp);
  const T residual = g - m;
  s = c.beta2 * s + c.one_minus_beta2 * residual * residual + c.eps;
  T s_used = s;
  if (c.amsgrad) {
    s_max = opt_max(s_max, s);
    s_used = s_max;
  }
  p = p - c.step_size * m / adam_denominator(s_used, c);
}

}  // namespace fused_optim
