// Generic multi-tensor apply for the CPU: walks every element of every tensor
// of a param group in fixed-size chunks, in parallel, and hands each chunk's
// typed pointers to a per-optimizer loop. It knows nothing of any rule.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <array>
#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "half_convert.h"

namespace fused_optim::cpu {

// Elements per work item: large enough to amortize dispatch, small enough that
// the two threads split a 1M-element tensor evenly and a chunk of all arrays
// stays in L2.
constexpr int64_t kChunkElements = 1 << 14;

// Fewest elements worth a thread: waking the pool costs more than updating a
// few thousand elements, and far more when the other cores are busy (a call on
// 2000 one-element tensors took 10 ms across two threads of a loaded 2-core
// machine, 2 ms on one). at::internal::GRAIN_SIZE, as torch's own loops use.
constexpr int64_t kParallelElements = 32768;

// Put before a loop's element loop: vectorize it without run-time alias checks.
// Iteration j reads and writes element j of each list only, and the lists are
// distinct tensors. GCC does not vectorize a loop whose alias checks exceed its
// limit (ten pairs): with master weights a loop has six float arrays.
#if defined(__clang__)
#define FUSED_OPTIM_LISTS_DO_NOT_OVERLAP _Pragma("clang loop vectorize(assume_safety)")
#else
#define FUSED_OPTIM_LISTS_DO_NOT_OVERLAP _Pragma("GCC ivdep")
#endif

// Lists of every operator that loops go by.
constexpr size_t kParamList = 0;
constexpr size_t kGradList = 1;

// lists[k][i] is argument k of param i; lists[0] are the params, lists[1] the
// grads. An empty list is an unused argument: its pointer is null. Lists
// flagged in `mutated` are written back when a tensor had to be made
// contiguous for the kernel. model_params is empty, or (fp32 master weights)
// the bf16/fp16 params that receive the rounded new value of lists[0].
// unscale_grads (AMP: 1/grad_scale): each grad is multiplied by it after the
// update, leaving the unscaled grads in place as torch's fused optimizers do.
template <size_t N>
struct TensorLists {
  std::array<std::vector<at::Tensor>, N> lists;
  std::array<bool, N> mutated;
  std::vector<at::Tensor> model_params = {};
  std::optional<double> unscale_grads = std::nullopt;
};

// One chunk of one param's tensors as a loop sees them: ptrs[k] for list k of
// dtype S (ptrs[1] is null), the grads of dtype G, and the model params (dtype
// G) where kModel, else nullptr. S == G without master weights. fp16 lists
// reach the loops as float copies (apply_fp16_staged below).
template <typename S, typename G, bool kModel, size_t N>
struct Chunk {
  using opmath = at::opmath_type<S>;
  std::array<S*, N> ptrs;
  G* grad;
  std::conditional_t<kModel, G*, std::nullptr_t> model;
};

// Stores a param's new value, and its rounded copy in the model's param under master weights.
template <typename S, typename T>
inline void store_param(S* __restrict p, std::nullptr_t, int64_t j, T value) {
  p[j] = value;
}
template <typename S, typename G, typename T>
inline void store_param(S* __restrict p, G* __restrict model, int64_t j, T value) {
  p[j] = value;
  model[j] = G(value);
}

namespace detail {

// True when every tensor of param i can be walked as one flat array with the
// same element order (contiguous, or dense with identical strides).
template <size_t N>
bool flat_compatible(const TensorLists<N>& args, size_t i) {
  const at::Tensor& p = args.lists[0][i];
  if (!p.is_non_overlapping_and_dense()) return false;
  auto same_layout = [&](const at::Tensor& t) {
    return t.is_non_overlapping_and_dense() && t.strides() == p.strides();
  };
  for (const auto& list : args.lists)
    if (!list.empty() && !same_layout(list[i])) return false;
  return args.model_params.empty() || same_layout(args.model_params[i]);
}

// Replaces t by a contiguous copy, remembering to copy it back if it is written.
inline void make_dense(at::Tensor& t, bool mutated,
                       std::vector<std::pair<at::Tensor, at::Tensor>>& copy_back) {
  at::Tensor dense = t.contiguous();
  if (mutated && !dense.is_same(t)) copy_back.emplace_back(t, dense);
  t = dense;
}

// Element `begin` of tensor t.
template <typename S>
S* element_ptr(const at::Tensor& t, int64_t begin) {
  return t.data_ptr<S>() + begin;
}

inline uint16_t* half_bits_ptr(const at::Tensor& t, int64_t begin) {
  return reinterpret_cast<uint16_t*>(t.data_ptr<at::Half>() + begin);
}

template <typename S, typename G, bool kModel, size_t N>
Chunk<S, G, kModel, N> chunk_pointers(TensorLists<N>& args, int64_t i, int64_t begin) {
  Chunk<S, G, kModel, N> c{};
  for (size_t k = 0; k < N; ++k)
    if (k != kGradList && !args.lists[k].empty()) c.ptrs[k] = element_ptr<S>(args.lists[k][i], begin);
  c.grad = element_ptr<G>(args.lists[kGradList][i], begin);
  if constexpr (kModel) c.model = element_ptr<G>(args.model_params[i], begin);
  return c;
}

// grad *= factor for n elements, computed in the opmath type and rounded once.
template <typename G>
void scale_in_place(G* __restrict grad, int64_t n, double factor) {
  using T = at::opmath_type<G>;
  const T f = T(factor);
  for (int64_t j = 0; j < n; ++j) grad[j] = G(T(grad[j]) * f);
}

// Runs the loop on one chunk, then leaves its grads unscaled (AMP) if asked.
template <size_t N, typename Loop, typename C>
void run_chunk(const TensorLists<N>& args, int64_t i, C chunk, int64_t n, const Loop& loop) {
  loop(i, chunk, n);
  if (args.unscale_grads) scale_in_place(chunk.grad, n, *args.unscale_grads);
}

// fp16 elements per staged block: the float copies of every list of a block
// stay in L1 (512 was the fastest of 128 to 8192 on the 2-core EPYC).
constexpr int64_t kStageElements = 512;

// Runs the loop on float copies of the fp16 lists of n elements of param i,
// block by block, and rounds the written ones back: the compiler vectorizes the
// float loops, and the conversions use F16C (half_convert.h). The result is
// that of converting each element in the loop (loads are exact, each store
// rounds once). Without master weights every list is fp16; with them
// (kModel) only the grads and the model params, the rest being float.
template <bool kModel, size_t N, typename Loop>
void apply_fp16_staged(TensorLists<N>& args, int64_t i, int64_t begin, int64_t n, const Loop& loop) {
  alignas(64) float stage[N + 1][kStageElements];  // [k]: list k, [N]: the model params
  auto staged = [&](size_t k) { return !args.lists[k].empty() && (!kModel || k == kGradList); };
  for (int64_t b = begin; b < begin + n; b += kStageElements) {
    const int64_t m = std::min(kStageElements, begin + n - b);
    Chunk<float, float, kModel, N> c{};
    for (size_t k = 0; k < N; ++k) {
      if (staged(k)) {
        half_to_float(half_bits_ptr(args.lists[k][i], b), stage[k], m);
        c.ptrs[k] = stage[k];
      } else if (!args.lists[k].empty()) {
        c.ptrs[k] = element_ptr<float>(args.lists[k][i], b);
      }
    }
    c.grad = std::exchange(c.ptrs[kGradList], nullptr);
    if constexpr (kModel) c.model = stage[N];
    run_chunk(args, i, c, m, loop);
    for (size_t k = 0; k < N; ++k)
      if (staged(k) && args.mutated[k])
        float_to_half(stage[k], half_bits_ptr(args.lists[k][i], b), m);
    if constexpr (kModel) float_to_half(stage[N], half_bits_ptr(args.model_params[i], b), m);
  }
}

}  // namespace detail

// Calls loop(i, chunk, n) with a Chunk pointing at n consecutive elements of
// param i's tensors, for every chunk of every tensor.
template <size_t N, typename Loop>
void multi_tensor_apply(TensorLists<N>& args, const Loop& loop) {
  const size_t count = args.lists[0].size();
  if (args.unscale_grads) args.mutated[kGradList] = true;
  // Strided tensors are updated through contiguous copies, written back after.
  std::vector<std::pair<at::Tensor, at::Tensor>> copy_back;
  for (size_t i = 0; i < count; ++i) {
    if (args.lists[0][i].numel() == 0 || detail::flat_compatible(args, i)) continue;
    for (size_t k = 0; k < N; ++k)
      if (!args.lists[k].empty()) detail::make_dense(args.lists[k][i], args.mutated[k], copy_back);
    if (!args.model_params.empty()) detail::make_dense(args.model_params[i], true, copy_back);
  }

  struct WorkItem {
    int64_t tensor;
    int64_t begin;
    int64_t end;
  };
  std::vector<WorkItem> chunks;
  int64_t elements = 0;
  for (size_t i = 0; i < count; ++i) {
    const int64_t n = args.lists[0][i].numel();
    elements += n;
    for (int64_t b = 0; b < n; b += kChunkElements)
      chunks.push_back({static_cast<int64_t>(i), b, std::min(n, b + kChunkElements)});
  }
  // Chunks per thread at the least, so that each thread gets kParallelElements
  // on average: a call on fewer elements than that runs on this thread alone.
  const auto items = static_cast<int64_t>(chunks.size());
  const int64_t grain =
      std::max<int64_t>(1, items * kParallelElements / std::max<int64_t>(elements, 1));

  at::parallel_for(0, items, grain, [&](int64_t first, int64_t last) {
    for (int64_t c = first; c < last; ++c) {
      const WorkItem& chunk = chunks[c];
      const int64_t n = chunk.end - chunk.begin;
      const int64_t i = chunk.tensor;
      if (args.model_params.empty()) {
        const at::ScalarType dtype = args.lists[0][i].scalar_type();
        if (dtype == at::kHalf) {
          detail::apply_fp16_staged<false>(args, i, chunk.begin, n, loop);
        } else {
          AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, dtype, "fused_optim", [&] {
            auto ptrs = detail::chunk_pointers<scalar_t, scalar_t, false>(args, i, chunk.begin);
            detail::run_chunk(args, i, ptrs, n, loop);
          });
        }
      } else if (args.model_params[i].scalar_type() == at::kHalf) {
        detail::apply_fp16_staged<true>(args, i, chunk.begin, n, loop);
      } else {  // bf16 (checks.cpp admits no other model-param dtype)
        auto ptrs = detail::chunk_pointers<float, at::BFloat16, true>(args, i, chunk.begin);
        detail::run_chunk(args, i, ptrs, n, loop);
      }
    }
  });

  for (auto& [original, dense] : copy_back) original.copy_(dense);
}

}  // namespace fused_optim::cpu
