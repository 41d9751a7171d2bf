// The CUDA kernels run on the CPU (see host_emulation.h): each launch_* of
// csrc/cuda must update every element of every tensor exactly as a plain loop
// over the rules.h functions does, bit for bit, for every dtype, with odd sizes,
// tensors of several chunks, hundreds of tensors (several launches), pointers
// off the 16-byte grid (the scalar path), unused lists left null, lr and the
// AMP scalars read through pointers, per-tensor step counts, and found_inf
// skipping everything, and fp32 master weights (float params and state, bf16
// or fp16 grads and model params). Run by tests/test_cuda_compile.py; needs no GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "../../csrc/cuda/dtypes.cuh"
#include "../../csrc/cuda/launch.h"
#include "../../csrc/rules.h"

// The kernels' built-in variables, assignable here (-D__STORAGE__=extern).
extern "C" {
uint3 threadIdx;
uint3 blockIdx;
dim3 blockDim;
dim3 gridDim;
int warpSize = 32;
}

using namespace fused_optim;
using namespace fused_optim::cuda;

namespace {

template <typename S>
ScalarType scalar_type();
template <>
ScalarType scalar_type<float>() {
  return ScalarType::kFloat;
}
template <>
ScalarType scalar_type<double>() {
  return ScalarType::kDouble;
}
template <>
ScalarType scalar_type<__half>() {
  return ScalarType::kHalf;
}
template <>
ScalarType scalar_type<__nv_bfloat16>() {
  return ScalarType::kBFloat16;
}

template <typename S>
const char* type_name() {
  if constexpr (std::is_same_v<S, float>) return "float32";
  if constexpr (std::is_same_v<S, double>) return "float64";
  if constexpr (std::is_same_v<S, __half>) return "float16";
  return "bfloat16";
}

// Tensor sizes: empty, odd, several chunks, and 300 small ones (two launches).
std::vector<int64_t> test_sizes() {
  std::vector<int64_t> sizes = {0, 1, 7, 4097, 2 * 65536 + 3, 0, 16, 31};
  std::mt19937 rng(3);
  for (int i = 0; i < 300; ++i) sizes.push_back(rng() % 200);
  return sizes;
}

// The lists of one tensor set: list k has elements of type S, but for the
// grads (list 1) and the model params (the last list), of type G. S == G
// without master weights; with them (S float, G bf16/fp16) the model params
// are passed and must come back as the rounded new params. Each tensor's
// elements lie between guard elements, which must come back unchanged.
template <typename S, typename G, int N>
struct Lists {
  using T = opmath_t<S>;
  static constexpr bool kMaster = !std::is_same_v<S, G>;
  static constexpr bool narrow(int k) { return k == 1 || k == N - 1; }

  std::vector<int64_t> sizes;
  unsigned used;  // bit k: list k is passed (else null)
  std::vector<std::vector<S>> wide[N];
  std::vector<std::vector<G>> thin[N];

  // A vector's worth of guard elements keeps the data 16-byte aligned (malloc
  // aligns to 16); one more puts it off the grid.
  template <typename E>
  static int offset(int k, size_t i) {
    return 16 / static_cast<int>(sizeof(E)) + ((i % 3 == 2) || (k == 1 && i % 5 == 4) ? 1 : 0);
  }
  static int offset(int k, size_t i) { return narrow(k) ? offset<G>(k, i) : offset<S>(k, i); }

  void* ptr(int k, size_t i) {
    return narrow(k) ? static_cast<void*>(thin[k][i].data() + offset(k, i))
                     : static_cast<void*>(wide[k][i].data() + offset(k, i));
  }
  T load(int k, size_t i, int64_t j) {
    return narrow(k) ? T(to_opmath(static_cast<G*>(ptr(k, i))[j]))
                     : T(to_opmath(static_cast<S*>(ptr(k, i))[j]));
  }
  void store(int k, size_t i, int64_t j, T x) {
    if (narrow(k))
      static_cast<G*>(ptr(k, i))[j] = from_opmath<G>(x);
    else
      static_cast<S*>(ptr(k, i))[j] = from_opmath<S>(x);
  }

  template <typename E>
  static void fill_one(std::vector<E>& v, int64_t size, int k, std::mt19937& rng,
                       const std::function<double(int, std::mt19937&)>& value) {
    v.resize(size + 2 * (16 / sizeof(E)) + 1);
    for (auto& x : v) x = from_opmath<E>(static_cast<opmath_t<E>>(value(k, rng)));
  }

  void fill(std::mt19937& rng, const std::function<double(int, std::mt19937&)>& value) {
    for (int k = 0; k < N; ++k) {
      wide[k].assign(sizes.size(), {});
      thin[k].assign(sizes.size(), {});
      if (!((used >> k) & 1u)) continue;
      for (size_t i = 0; i < sizes.size(); ++i) {
        if (narrow(k))
          fill_one(thin[k][i], sizes[i], k, rng, value);
        else
          fill_one(wide[k][i], sizes[i], k, rng, value);
      }
    }
  }

  std::vector<TensorPtrs<N>> pointers(const std::vector<float>& steps) {
    std::vector<TensorPtrs<N>> out(sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i) {
      for (int k = 0; k < N; ++k) out[i].data[k] = ((used >> k) & 1u) ? ptr(k, i) : nullptr;
      out[i].numel = sizes[i];
      out[i].step = steps.empty() ? nullptr : &steps[i];
    }
    return out;
  }

  // Applies update(i, x) to every element in opmath, as a plain loop; with
  // master weights the model param then gets the new param.
  template <typename Update>
  void apply(const Update& update) {
    for (size_t i = 0; i < sizes.size(); ++i) {
      for (int64_t j = 0; j < sizes[i]; ++j) {
        T x[N] = {};
        for (int k = 0; k < N; ++k)
          if ((used >> k) & 1u) x[k] = load(k, i, j);
        update(i, x);
        if (kMaster) x[N - 1] = x[0];
        for (int k = 0; k < N; ++k)
          if ((used >> k) & 1u) store(k, i, j, x[k]);
      }
    }
  }
};

template <typename E>
bool same_bits(const std::string& name, int k, const std::vector<std::vector<E>>& got,
               const std::vector<std::vector<E>>& want, const std::vector<int64_t>& sizes,
               const std::function<int(size_t)>& offset) {
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& a = got[i];
    const auto& b = want[i];
    if (a.size() != b.size()) return false;
    for (size_t j = 0; j < a.size(); ++j) {
      if (std::memcmp(&a[j], &b[j], sizeof(E)) != 0) {
        std::printf("FAIL %s: list %d, tensor %zu (size %lld), element %lld: %.9g, want %.9g\n",
                    name.c_str(), k, i, static_cast<long long>(sizes[i]),
                    static_cast<long long>(j) - offset(i), static_cast<double>(to_opmath(a[j])),
                    static_cast<double>(to_opmath(b[j])));
        return false;
      }
    }
  }
  return true;
}

template <typename S, typename G, int N>
bool same_bits(const std::string& name, const Lists<S, G, N>& got, const Lists<S, G, N>& want) {
  for (int k = 0; k < N; ++k) {
    auto offset = [k](size_t i) { return Lists<S, G, N>::offset(k, i); };
    if (!same_bits(name, k, got.wide[k], want.wide[k], want.sizes, offset) ||
        !same_bits(name, k, got.thin[k], want.thin[k], want.sizes, offset))
      return false;
  }
  return true;
}

template <typename S, typename G>
std::string types_name() {
  return std::is_same_v<S, G> ? type_name<S>()
                              : std::string(type_name<G>()) + " with float32 master weights";
}

// Runs launch on one copy and the plain loop on another; they must agree.
// With master weights the model params (the last list) are passed too.
// update == nullptr: the launch must change nothing (a skipped step).
template <typename S, typename G, int N, typename Launch, typename Update>
bool check(const std::string& name, unsigned used, const std::vector<float>& steps,
           const std::function<double(int, std::mt19937&)>& value, const Launch& launch,
           const Update& update) {
  std::mt19937 rng(42);
  if (Lists<S, G, N>::kMaster) used |= 1u << (N - 1);
  Lists<S, G, N> got{test_sizes(), used, {}, {}};
  got.fill(rng, value);
  Lists<S, G, N> want = got;
  const auto ptrs = got.pointers(steps);
  const ElementTypes types{scalar_type<S>(), scalar_type<G>()};
  const cudaError_t err =
      launch(types, Span<TensorPtrs<N>>{ptrs.data(), static_cast<int64_t>(ptrs.size())});
  if (err != cudaSuccess) {
    std::printf("FAIL %s: launch returned %d\n", name.c_str(), static_cast<int>(err));
    return false;
  }
  if constexpr (!std::is_null_pointer_v<Update>) want.apply(update);
  const std::string full = name + " " + types_name<S, G>();
  const bool ok = same_bits(full, got, want);
  if (ok) std::printf("ok   %s\n", full.c_str());
  return ok;
}

double uniform(std::mt19937& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

// Params and grads in [-1, 1), states in [0, 1) (square averages stay >= 0).
double default_value(int k, std::mt19937& rng) {
  return k < 2 ? uniform(rng, -1, 1) : uniform(rng, 0, 1);
}

std::vector<float> test_steps() {
  std::vector<float> steps;
  for (size_t i = 0; i < test_sizes().size(); ++i)
    steps.push_back(1.0f + static_cast<float>(i % 7));
  return steps;
}

CommonArgs common(double lr, double weight_decay, bool maximize) {
  CommonArgs c;
  c.lr.value = lr;
  c.grad_scale.value = 1.0;
  c.found_inf.value = 0.0;
  c.weight_decay = weight_decay;
  c.maximize = maximize;
  return c;
}

// Host copies of the values the kernels read through pointers.
const float kLrOnDevice = 0.02f;
const double kGradScaleOnDevice = 4.0;
const float kFoundInf = 1.0f;

// rules.h's momentum_update with run-time flags as its template arguments.
template <typename T>
void momentum_rule(T& p, T g, T& buf, const MomentumCoeffs<T>& c, bool has_momentum, bool nesterov,
                   bool first_step) {
  if (!has_momentum)
    momentum_update<false, false, false>(p, g, buf, c);
  else if (nesterov)
    first_step ? momentum_update<true, true, true>(p, g, buf, c)
               : momentum_update<true, true, false>(p, g, buf, c);
  else
    first_step ? momentum_update<true, false, true>(p, g, buf, c)
               : momentum_update<true, false, false>(p, g, buf, c);
}

template <typename S, typename G>
bool check_momentum() {
  using T = opmath_t<S>;
  constexpr int N = momentum_list::kCount;
  bool ok = true;
  struct Config {
    const char* name;
    double momentum, dampening;
    bool nesterov, first_step;
  };
  for (const Config& cfg : {Config{"momentum first step", 0.9, 0.1, false, true},
                            Config{"momentum nesterov", 0.9, 0.0, true, false},
                            Config{"momentum nesterov first step", 0.9, 0.0, true, true},
                            Config{"momentum dampened", 0.8, 0.3, false, false},
                            Config{"momentum 0 (no buffers)", 0.0, 0.0, false, false}}) {
    MomentumArgs args{common(0.05, 0.01, true), cfg.momentum, cfg.dampening, cfg.nesterov,
                      cfg.first_step};
    args.common.lr.ptr = &kLrOnDevice;  // read through the pointer, not value
    const bool has_buffer = cfg.momentum != 0.0;
    const MomentumCoeffs<T> c = make_momentum_coeffs(make_grad_prep<T>(1.0, 0.01, true), kLrOnDevice,
                                                     cfg.momentum, cfg.dampening);
    // On the first step the buffer holds garbage (NaN) that must not be read.
    auto value = [&](int k, std::mt19937& rng) {
      return k == 2 && cfg.first_step ? NAN : default_value(k, rng);
    };
    ok &= check<S, G, N>(
        cfg.name, has_buffer ? 0b111u : 0b011u, {}, value,
        [&](ElementTypes t, auto span) { return launch_momentum(t, span, args, nullptr); },
        [&](size_t, T(&x)[N]) {
          T buf = has_buffer && !cfg.first_step ? x[2] : T(0);
          momentum_rule(x[0], x[1], buf, c, has_buffer, cfg.nesterov, cfg.first_step);
          if (has_buffer) x[2] = buf;
        });
  }
  return ok;
}

template <typename S, typename G>
bool check_rmsprop() {
  using T = opmath_t<S>;
  constexpr int N = rmsprop_list::kCount;
  bool ok = true;
  for (const bool centered : {false, true}) {
    for (const double momentum : {0.0, 0.9}) {
      RMSPropArgs args{common(0.01, 0.1, false), 0.9, 1e-3, momentum, centered};
      args.common.grad_scale.ptr = &kGradScaleOnDevice;
      args.common.grad_scale.is_double = true;
      args.common.unscale_grads = centered;  // AMP: the grads are left unscaled
      const RMSPropCoeffs<T> c = make_rmsprop_coeffs(
          make_grad_prep<T>(1.0 / kGradScaleOnDevice, 0.1, false), 0.01, 0.9, 1e-3, momentum, centered);
      const unsigned used = 0b00111u | (centered ? 0b01000u : 0u) | (momentum > 0 ? 0b10000u : 0u);
      // grad_avg^2 <= square_avg keeps the centered root real.
      auto value = [](int k, std::mt19937& rng) {
        return k == 3   ? uniform(rng, -0.1, 0.1)
               : k == 2 ? uniform(rng, 0.5, 1)
                        : default_value(k, rng);
      };
      const std::string name = std::string("rmsprop") + (centered ? " centered, grads unscaled" : "") +
                               (momentum > 0 ? " momentum" : "");
      ok &= check<S, G, N>(
          name, used, {}, value,
          [&](ElementTypes t, auto span) { return launch_rmsprop(t, span, args, nullptr); },
          [&](size_t, T(&x)[N]) {
            rmsprop_update(x[0], x[1], x[2], x[3], x[4], c);
            if (centered) x[1] = x[1] * T(1.0 / kGradScaleOnDevice);
          });
    }
  }
  return ok;
}

template <typename S, typename G>
bool check_adam() {
  using T = opmath_t<S>;
  constexpr int N = adam_list::kCount;
  const std::vector<float> steps = test_steps();
  bool ok = true;
  struct Config {
    const char* name;
    bool decoupled, amsgrad, bias_correction, maximize;
  };
  for (const Config& cfg :
       {Config{"adam", false, false, true, false},
        Config{"adamw amsgrad maximize", true, true, true, true},
        Config{"adam no bias correction, amsgrad", false, true, false, false}}) {
    const double lr = 0.01, wd = 0.05, b1 = 0.8, b2 = 0.99, eps = 1e-6;
    AdamArgs args{common(lr, wd, cfg.maximize), b1, b2, eps, cfg.decoupled, cfg.amsgrad,
                  cfg.bias_correction};
    auto update = [&](size_t i, T(&x)[N]) {
      const AdamCoeffs<T> c = make_adam_coeffs(
          make_grad_prep<T>(1.0, cfg.decoupled ? 0.0 : wd, cfg.maximize), lr, b1, b2, eps, steps[i],
          cfg.bias_correction, cfg.decoupled ? wd : 0.0, cfg.amsgrad);
      adam_update(x[0], x[1], x[2], x[3], x[4], c);
    };
    ok &= check<S, G, N>(
        cfg.name, cfg.amsgrad ? 0b11111u : 0b01111u, steps, default_value,
        [&](ElementTypes t, auto span) { return launch_adam(t, span, args, nullptr); }, update);
  }
  // found_inf set (read through its pointer): nothing changes, the grads included.
  AdamArgs args{common(0.01, 0.0, false), 0.9, 0.999, 1e-8, false, true, true};
  args.common.found_inf.ptr = &kFoundInf;
  args.common.unscale_grads = true;
  ok &= check<S, G, N>(
      "adam found_inf skips", 0b11111u, steps, default_value,
      [&](ElementTypes t, auto span) { return launch_adam(t, span, args, nullptr); }, nullptr);
  return ok;
}

template <typename S, typename G>
bool check_diffgrad() {
  using T = opmath_t<S>;
  constexpr int N = diffgrad_list::kCount;
  const std::vector<float> steps = test_steps();
  const double lr = 0.01, wd = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  bool ok = true;
  for (const double scale : {1.0, 8.0}) {  // 8: AMP, the grads left unscaled
    DiffGradArgs args{common(lr, wd, true), b1, b2, eps};
    args.common.grad_scale.value = scale;
    args.common.unscale_grads = scale != 1.0;
    ok &= check<S, G, N>(
        scale != 1.0 ? "diffgrad, grads unscaled" : "diffgrad", 0b11111u, steps, default_value,
        [&](ElementTypes t, auto span) { return launch_diffgrad(t, span, args, nullptr); },
        [&](size_t i, T(&x)[N]) {
          const AdamCoeffs<T> c = make_adam_coeffs(make_grad_prep<T>(1.0 / scale, wd, true), lr, b1,
                                                   b2, eps, steps[i], true, 0.0, false);
          diffgrad_update(x[0], x[1], x[2], x[3], x[4], c);
          if (scale != 1.0) x[1] = x[1] * T(1.0 / scale);
        });
  }
  return ok;
}

template <typename S, typename G>
bool check_adagrad() {
  using T = opmath_t<S>;
  constexpr int N = adagrad_list::kCount;
  const std::vector<float> steps = test_steps();
  const double lr_decay = 0.1, wd = 0.05, eps = 1e-10;
  AdagradArgs args{common(0.0, wd, true), lr_decay, eps};
  args.common.lr.ptr = &kLrOnDevice;
  return check<S, G, N>(
      "adagrad", 0b0111u, steps, default_value,
      [&](ElementTypes t, auto span) { return launch_adagrad(t, span, args, nullptr); },
      [&](size_t i, T(&x)[N]) {
        const AdagradCoeffs<T> c =
            make_adagrad_coeffs(make_grad_prep<T>(1.0, wd, true), kLrOnDevice, lr_decay, eps, steps[i]);
        adagrad_update(x[0], x[1], x[2], c);
      });
}

// Steps 1 to 7 with beta2 0.999: the first five are not rectified, the last two are.
template <typename S, typename G>
bool check_radam() {
  using T = opmath_t<S>;
  constexpr int N = radam_list::kCount;
  const std::vector<float> steps = test_steps();
  const double lr = 0.01, wd = 0.05, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  bool ok = true;
  for (const bool decoupled : {false, true}) {
    RAdamArgs args{common(lr, wd, false), b1, b2, eps, decoupled};
    ok &= check<S, G, N>(
        decoupled ? "radam decoupled" : "radam", 0b01111u, steps, default_value,
        [&](ElementTypes t, auto span) { return launch_radam(t, span, args, nullptr); },
        [&](size_t i, T(&x)[N]) {
          const RAdamStepScalars st = radam_step_scalars(lr, b1, b2, steps[i]);
          const RAdamCoeffs<T> c = make_radam_coeffs(make_grad_prep<T>(1.0, decoupled ? 0.0 : wd, false),
                                                     lr, b1, b2, eps, st, decoupled ? wd : 0.0);
          if (st.rectified)
            radam_update<true>(x[0], x[1], x[2], x[3], c);
          else
            radam_update<false>(x[0], x[1], x[2], x[3], c);
        });
  }
  return ok;
}

template <typename S, typename G>
bool check_adabelief() {
  using T = opmath_t<S>;
  constexpr int N = adabelief_list::kCount;
  const std::vector<float> steps = test_steps();
  const double lr = 0.01, wd = 0.05, b1 = 0.9, b2 = 0.999, eps = 1e-12;
  bool ok = true;
  for (const bool amsgrad : {false, true}) {
    AdaBeliefArgs args{common(lr, wd, amsgrad), b1, b2, eps, /*decoupled=*/amsgrad, amsgrad};
    ok &= check<S, G, N>(
        amsgrad ? "adabelief amsgrad decoupled maximize" : "adabelief", amsgrad ? 0b11111u : 0b01111u,
        steps, default_value,
        [&](ElementTypes t, auto span) { return launch_adabelief(t, span, args, nullptr); },
        [&](size_t i, T(&x)[N]) {
          const AdamCoeffs<T> c = make_adam_coeffs(make_grad_prep<T>(1.0, amsgrad ? 0.0 : wd, amsgrad),
                                                   lr, b1, b2, eps, steps[i], true,
                                                   amsgrad ? wd : 0.0, amsgrad);
          adabelief_update(x[0], x[1], x[2], x[3], x[4], c);
        });
  }
  return ok;
}

template <typename S, typename G = S>
bool check_all() {
  bool ok = check_momentum<S, G>();
  ok &= check_rmsprop<S, G>();
  ok &= check_adam<S, G>();
  ok &= check_diffgrad<S, G>();
  ok &= check_adagrad<S, G>();
  ok &= check_radam<S, G>();
  ok &= check_adabelief<S, G>();
  return ok;
}

}  // namespace

int main() {
  bool ok = check_all<float>();
  ok &= check_all<double>();
  ok &= check_all<__half>();
  ok &= check_all<__nv_bfloat16>();
  ok &= check_all<float, __half>();
  ok &= check_all<float, __nv_bfloat16>();
  std::printf(ok ? "all ok\n" : "FAILED\n");
  return ok ? 0 : 1;
}
