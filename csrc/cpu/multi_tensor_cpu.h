// Generic multi-tensor apply for the CPU: walks every element of every tensor
// of a param group in fixed-size chunks, in parallel, and hands each chunk's
// typed pointers to a per-optimizer loop. It knows nothing of any rule.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#include "half_bits.h"

namespace fused_optim::cpu {

// Elements per work item: large enough to amortize dispatch, small enough that
// the two threads split a 1M-element tensor evenly and a chunk of all arrays
// stays in L2.
constexpr int64_t kChunkElements = 1 << 14;

// Lists of every operator that loops go by.
constexpr size_t kParamList = 0;
constexpr size_t kGradList = 1;

// lists[k][i] is argument k of param i; lists[0] are the params, lists[1] the
// grads. An empty list is an unused argument: its pointer is null. Lists
// flagged in `mutated` are written back when a tensor had to be made
// contiguous for the kernel. model_params is empty, or (fp32 master weights)
// the bf16/fp16 params that receive the rounded new value of lists[0].
template <size_t N>
struct TensorLists {
  std::array<std::vector<at::Tensor>, N> lists;
  std::array<bool, N> mutated;
  std::vector<at::Tensor> model_params = {};
};

// The element type the loops load and store for a tensor dtype S: its own, but
// for fp16 (half_bits.h: conversions the compiler vectorizes).
template <typename S>
struct CpuElement {
  using type = S;
};
template <>
struct CpuElement<at::Half> {
  using type = Half16;
};
template <typename S>
using cpu_element_t = typename CpuElement<S>::type;
static_assert(sizeof(Half16) == sizeof(at::Half));

// One chunk of one param's tensors as a loop sees them: ptrs[k] for list k of
// dtype S (ptrs[1] is null), the grads of dtype G, and the model params (dtype
// G) where kModel, else nullptr. S == G without master weights.
template <typename S, typename G, bool kModel, size_t N>
struct Chunk {
  using opmath = at::opmath_type<S>;
  std::array<cpu_element_t<S>*, N> ptrs;
  const cpu_element_t<G>* grad;
  std::conditional_t<kModel, cpu_element_t<G>*, std::nullptr_t> model;
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

// Element `begin` of tensor t, as the loops' element type.
template <typename S>
cpu_element_t<S>* element_ptr(const at::Tensor& t, int64_t begin) {
  return reinterpret_cast<cpu_element_t<S>*>(t.data_ptr<S>() + begin);
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

}  // namespace detail

// Calls loop(i, chunk, n) with a Chunk pointing at n consecutive elements of
// param i's tensors, for every chunk of every tensor.
template <size_t N, typename Loop>
void multi_tensor_apply(TensorLists<N>& args, const Loop& loop) {
  const size_t count = args.lists[0].size();
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
  for (size_t i = 0; i < count; ++i) {
    const int64_t n = args.lists[0][i].numel();
    for (int64_t b = 0; b < n; b += kChunkElements)
      chunks.push_back({static_cast<int64_t>(i), b, std::min(n, b + kChunkElements)});
  }

  at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t first, int64_t last) {
    for (int64_t c = first; c < last; ++c) {
      const WorkItem& chunk = chunks[c];
      const int64_t n = chunk.end - chunk.begin;
      if (args.model_params.empty()) {
        AT_DISPATCH_FLOATING_TYPES_AND2(
            at::kHalf, at::kBFloat16, args.lists[0][chunk.tensor].scalar_type(), "fused_optim", [&] {
              loop(chunk.tensor,
                   detail::chunk_pointers<scalar_t, scalar_t, false>(args, chunk.tensor, chunk.begin), n);
            });
      } else {
        AT_DISPATCH_REDUCED_FLOATING_TYPES(
            args.model_params[chunk.tensor].scalar_type(), "fused_optim_master_weights", [&] {
              loop(chunk.tensor,
                   detail::chunk_pointers<float, scalar_t, true>(args, chunk.tensor, chunk.begin), n);
            });
      }
    }
  });

  for (auto& [original, dense] : copy_back) original.copy_(dense);
}

}  // namespace fused_optim::cpu
