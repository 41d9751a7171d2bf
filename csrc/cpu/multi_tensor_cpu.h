// Generic multi-tensor apply for the CPU: walks every element of every tensor
// of a param group in fixed-size chunks, in parallel, and hands each chunk's
// typed pointers to a per-optimizer loop. It knows nothing of any rule.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <array>
#include <vector>

namespace fused_optim::cpu {

// Elements per work item: large enough to amortize dispatch, small enough that
// the two threads split a 1M-element tensor evenly and a chunk of all arrays
// stays in L2.
constexpr int64_t kChunkElements = 1 << 14;

// lists[k][i] is argument k of param i; lists[0] are the params. An empty list
// is an unused argument: its pointer is null. Lists flagged in `mutated` are
// written back when a tensor had to be made contiguous for the kernel.
template <size_t N>
struct TensorLists {
  std::array<std::vector<at::Tensor>, N> lists;
  std::array<bool, N> mutated;
};

namespace detail {

// True when every tensor of param i can be walked as one flat array with the
// same element order (contiguous, or dense with identical strides).
template <size_t N>
bool flat_compatible(const TensorLists<N>& args, size_t i) {
  const at::Tensor& p = args.lists[0][i];
  if (!p.is_non_overlapping_and_dense()) return false;
  for (const auto& list : args.lists) {
    if (list.empty()) continue;
    if (!list[i].is_non_overlapping_and_dense() || list[i].strides() != p.strides()) return false;
  }
  return true;
}

}  // namespace detail

// Calls loop(i, ptrs, n) with std::array<scalar_t*, N> ptrs pointing at n
// consecutive elements of param i's tensors, for every chunk of every tensor.
template <size_t N, typename Loop>
void multi_tensor_apply(TensorLists<N>& args, const Loop& loop) {
  const size_t count = args.lists[0].size();
  // Strided tensors are updated through contiguous copies, written back after.
  std::vector<std::pair<at::Tensor, at::Tensor>> copy_back;
  for (size_t i = 0; i < count; ++i) {
    if (args.lists[0][i].numel() == 0 || detail::flat_compatible(args, i)) continue;
    for (size_t k = 0; k < N; ++k) {
      if (args.lists[k].empty()) continue;
      at::Tensor& t = args.lists[k][i];
      at::Tensor dense = t.contiguous();
      if (args.mutated[k] && !dense.is_same(t)) copy_back.emplace_back(t, dense);
      t = dense;
    }
  }

  struct Chunk {
    int64_t tensor;
    int64_t begin;
    int64_t end;
  };
  std::vector<Chunk> chunks;
  for (size_t i = 0; i < count; ++i) {
    const int64_t n = args.lists[0][i].numel();
    for (int64_t b = 0; b < n; b += kChunkElements)
      chunks.push_back({static_cast<int64_t>(i), b, std::min(n, b + kChunkElements)});
  }

  at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t first, int64_t last) {
    for (int64_t c = first; c < last; ++c) {
      const Chunk& chunk = chunks[c];
      const at::Tensor& p = args.lists[0][chunk.tensor];
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.scalar_type(), "fused_optim",
                                      [&] {
                                        std::array<scalar_t*, N> ptrs{};
                                        for (size_t k = 0; k < N; ++k) {
                                          if (args.lists[k].empty()) continue;
                                          ptrs[k] = args.lists[k][chunk.tensor].template data_ptr<scalar_t>() +
                                                    chunk.begin;
                                        }
                                        loop(chunk.tensor, ptrs, chunk.end - chunk.begin);
                                      });
    }
  });

  for (auto& [original, dense] : copy_back) original.copy_(dense);
}

}  // namespace fused_optim::cpu
