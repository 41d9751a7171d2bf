// Generic multi-tensor apply for the CPU: walks every element of every tensor
// of a param group in fixed-size chunks, in parallel, and runs a rule's element
// op on each element in its opmath type. It knows nothing of any rule.
//
// A rule's kernel (csrc/cpu/<rule>.cpp) calls multi_tensor_apply(args, f); f(i,
// chunk) is called once per chunk of param i, makes the rule's coefficients,
// and calls chunk.update<kRead, kWrite>(op), where op(x) updates one element
// given x[k], the element of list k in the opmath type (rules.h names the
// lists): the same element op as the rule's CUDA functor.
//
// The compiler vectorizes the element loop: on float and double arrays, and on
// bf16 ones converted inside the loop (integer arithmetic). fp16 lists (which
// GCC cannot convert in a vectorized loop), and the mixed lists of fp32 master
// weights, are converted to float in blocks that stay in L1 (low_precision.h).
// Every written element is rounded once.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "../dense_lists.h"
#include "../op_lists.h"
#include "low_precision.h"

namespace fused_optim::cpu {

// Elements per chunk at most: large enough to amortize a chunk's setup (2^14
// left a 16M step 2% slower than one loop over the whole tensor).
constexpr int64_t kChunkElements = 1 << 16;

// Fewest elements worth a thread: waking the pool costs more than updating a
// few thousand elements, and far more when the other cores are busy (a call on
// 2000 one-element tensors took 10 ms across two threads of a loaded 2-core
// machine, 2 ms on one). at::internal::GRAIN_SIZE, as torch's own loops use.
constexpr int64_t kParallelElements = 32768;

// bf16/fp16 elements per staged block: the float copies of every list of a
// block stay in L1 (6 lists of 512 floats: 12 KB).
constexpr int64_t kStageElements = 512;

// Put before an element loop: vectorize it without run-time alias checks.
// Iteration j reads and writes element j of each list only, and the lists are
// distinct tensors (checks.cpp refuses overlapping ones). GCC does not
// vectorize a loop whose alias checks exceed its limit (ten pairs).
// Inlined into the rule's chunk function, where its coefficients are constants
// the loop can fold (a flag that selects between two values, as the lerp
// direction, stops the vectorizer when it is read from memory).
#define FUSED_OPTIM_INLINE inline __attribute__((always_inline))

#if defined(__clang__)
#define FUSED_OPTIM_LISTS_DO_NOT_OVERLAP _Pragma("clang loop vectorize(assume_safety)")
#else
#define FUSED_OPTIM_LISTS_DO_NOT_OVERLAP _Pragma("GCC ivdep")
#endif

// lists[k][i] is list k's tensor of param i, in the operator's order
// (rules.h): the params, the grads, the states, and last the model params,
// empty without master weights (then `params` are their float32 masters, and
// the model params receive the masters' new values, rounded). An empty list is
// unused. Lists flagged in `mutated` are copied back when a tensor had to be
// made contiguous for the kernel. unscale_grads (AMP: 1/grad_scale): each grad
// is multiplied by it after the update, leaving the unscaled grads in place as
// torch's fused optimizers do.
template <size_t N>
struct TensorLists {
  std::array<std::vector<at::Tensor>, N> lists;
  std::array<bool, N> mutated;
  std::optional<double> unscale_grads = std::nullopt;
};

// How a list's elements are stored: in the opmath type itself, or narrower.
enum class Storage : uint8_t { kOpmath, kBFloat16, kHalf };

namespace detail {

// Element j of a list as the opmath type T, and back: E is T itself, or
// uint16_t for the bits of a bf16 (converted inside the loop, which the
// compiler vectorizes; fp16 is staged instead, see Chunk::update).
template <typename T, typename E>
FUSED_OPTIM_INLINE T widen(E x) {
  if constexpr (std::is_same_v<E, T>)
    return x;
  else
    return bfloat16_bits_to_float(x);
}

template <typename T, typename E>
FUSED_OPTIM_INLINE E narrow(T x) {
  if constexpr (std::is_same_v<E, T>)
    return x;
  else
    return float_to_bfloat16_bits(x);
}

template <bool kOn, typename T, typename E>
FUSED_OPTIM_INLINE T load_if(const E* __restrict list, int64_t j) {
  if constexpr (kOn)
    return widen<T>(list[j]);
  else
    return T(0);
}

template <bool kOn, typename T, typename E>
FUSED_OPTIM_INLINE void store_if(E* __restrict list, int64_t j, T value) {
  if constexpr (kOn) list[j] = narrow<T, E>(value);
}

template <typename E, size_t>
using ListPtr = E*;

// The loop of element_loop, with each list a restrict pointer of its own: held
// in an array, the pointers were reloaded in every iteration and the staged
// loops were not vectorized.
template <unsigned kRead, unsigned kWrite, typename T, typename E, size_t N, typename Op, size_t... K>
FUSED_OPTIM_INLINE void element_loop_of(int64_t n, const Op& op, std::index_sequence<K...>,
                                        ListPtr<E, K> __restrict... list) {
  FUSED_OPTIM_LISTS_DO_NOT_OVERLAP
  for (int64_t j = 0; j < n; ++j) {  // the element loop (tests/test_vectorized.py)
    T x[N] = {load_if<((kRead >> K) & 1u) != 0, T>(list, j)...};
    op(x);
    (store_if<((kWrite >> K) & 1u) != 0>(list, j, x[K]), ...);
  }
}

template <unsigned kRead, unsigned kWrite, typename T, typename E, size_t N, typename Op, size_t... K>
FUSED_OPTIM_INLINE void element_loop_unpacked(const std::array<E*, N>& p, int64_t n, const Op& op,
                                              std::index_sequence<K...> lists) {
  element_loop_of<kRead, kWrite, T, E, N>(n, op, lists, p[K]...);
}

// x[k] = element j of list k for the lists in kRead (0 for the others), op(x),
// then the lists in kWrite get their new x[k]: for every j < n. The lists hold
// elements of type E, loaded into and stored from the opmath type T.
template <unsigned kRead, unsigned kWrite, typename T, typename E, size_t N, typename Op>
FUSED_OPTIM_INLINE void element_loop(const std::array<E*, N>& p, int64_t n, const Op& op) {
  element_loop_unpacked<kRead, kWrite, T>(p, n, op, std::make_index_sequence<N>{});
}

// x *= factor for n elements of type E, computed in T and rounded once.
template <typename T, typename E>
inline void scale_in_place(E* __restrict x, int64_t n, T factor) {
  for (int64_t j = 0; j < n; ++j) x[j] = narrow<T, E>(widen<T>(x[j]) * factor);
}

inline void load_block(Storage s, const void* src, float* __restrict dst, int64_t n) {
  const auto* bits = static_cast<const uint16_t*>(src);
  if (s == Storage::kHalf)
    half_to_float(bits, dst, n);
  else
    bfloat16_to_float(bits, dst, n);
}

// One list of a staged block: its bf16/fp16 elements and their float copies.
struct Staged {
  Storage storage;
  uint16_t* narrow;
  float* wide;
};

// Converts `count` lists of n elements each to float, a few cache lines of each
// list in turn, so that the loads of every list are in flight together (one
// list after another, the cores waited on memory: fp16 Adam took twice as long).
inline void load_blocks(const Staged* lists, int count, int64_t n) {
  constexpr int64_t kStride = 64;
  for (int64_t b = 0; b < n; b += kStride) {
    const int64_t m = std::min(kStride, n - b);
    for (int q = 0; q < count; ++q) load_block(lists[q].storage, lists[q].narrow + b, lists[q].wide + b, m);
  }
}

inline void store_block(Storage s, const float* __restrict src, void* dst, int64_t n) {
  auto* bits = static_cast<uint16_t*>(dst);
  if (s == Storage::kHalf)
    float_to_half(src, bits, n);
  else
    float_to_bfloat16(src, bits, n);
}

}  // namespace detail

// n consecutive elements of one param's lists, from element `begin` on.
template <typename T, size_t N>
struct Chunk {
  using opmath = T;
  std::array<char*, N> data;  // each list's element `begin`; null for an unused list
  std::array<Storage, N> storage;
  int64_t size;
  std::optional<T> unscale_grads;

  // Runs op on every element (see detail::element_loop). The model params (the
  // last list) are neither read nor written by op: they receive the new
  // params, rounded.
  template <unsigned kRead, unsigned kWrite, typename Op>
  FUSED_OPTIM_INLINE void update(const Op& op) const {
    static_assert(!(((kRead | kWrite) >> kModelList) & 1u), "the loop stores the model params");
    const unsigned used = kRead | kWrite;
    if (all_stored_as(Storage::kOpmath, used)) {
      direct_update<kRead, kWrite, T>(op);
    } else if constexpr (std::is_same_v<T, float>) {
      if (all_stored_as(Storage::kBFloat16, used))
        direct_update<kRead, kWrite, uint16_t>(op);
      else
        staged_update<kRead, kWrite>(op);
    }
  }

  // Bytes per element of list k.
  size_t element_size(size_t k) const { return storage[k] == Storage::kOpmath ? sizeof(T) : 2; }

 private:
  static constexpr size_t kModelList = N - 1;

  // True when each list in `used` holds elements stored as s, and there are no model params.
  bool all_stored_as(Storage s, unsigned used) const {
    if (data[kModelList] != nullptr) return false;
    for (size_t k = 0; k < kModelList; ++k)
      if (((used >> k) & 1u) && storage[k] != s) return false;
    return true;
  }

  // The update in place, each list's elements (of type E) converted in the loop.
  template <unsigned kRead, unsigned kWrite, typename E, typename Op>
  FUSED_OPTIM_INLINE void direct_update(const Op& op) const {
    std::array<E*, N> p{};
    for (size_t k = 0; k < N; ++k) p[k] = reinterpret_cast<E*>(data[k]);
    detail::element_loop<kRead, kWrite, T>(p, size, op);
    if (unscale_grads) detail::scale_in_place(p[kGradList], size, *unscale_grads);
  }
  // The update on float copies of the bf16/fp16 lists, block by block.
  template <unsigned kRead, unsigned kWrite, typename Op>
  FUSED_OPTIM_INLINE void staged_update(const Op& op) const {
    alignas(64) float stage[N][kStageElements];
    auto staged = [&](size_t k) { return data[k] != nullptr && storage[k] != Storage::kOpmath; };
    for (int64_t b = 0; b < size; b += kStageElements) {
      const int64_t m = std::min(kStageElements, size - b);
      std::array<float*, N> p{};
      detail::Staged loads[N];
      int count = 0;
      for (size_t k = 0; k < kModelList; ++k) {
        if (data[k] == nullptr) continue;
        char* at = data[k] + b * element_size(k);
        if (!staged(k)) {
          p[k] = reinterpret_cast<float*>(at);
          continue;
        }
        p[k] = stage[k];
        if (((kRead >> k) & 1u) || (k == kGradList && unscale_grads))
          loads[count++] = {storage[k], reinterpret_cast<uint16_t*>(at), stage[k]};
      }
      detail::load_blocks(loads, count, m);
      detail::element_loop<kRead, kWrite, float>(p, m, op);
      for (size_t k = 0; k < kModelList; ++k)
        if (((kWrite >> k) & 1u) && staged(k))
          detail::store_block(storage[k], stage[k], data[k] + b * element_size(k), m);
      if (data[kModelList] != nullptr)
        detail::store_block(storage[kModelList], p[kParamList],
                            data[kModelList] + b * element_size(kModelList), m);
      if (unscale_grads) {
        detail::scale_in_place(p[kGradList], m, *unscale_grads);
        if (staged(kGradList))
          detail::store_block(storage[kGradList], stage[kGradList],
                              data[kGradList] + b * element_size(kGradList), m);
      }
    }
  }

};

namespace detail {

inline Storage storage_of(at::ScalarType t) {
  if (t == at::kBFloat16) return Storage::kBFloat16;
  if (t == at::kHalf) return Storage::kHalf;
  return Storage::kOpmath;  // float or double: the opmath type of its tensor
}

// Param i's lists as the chunks address them, found once per call.
template <size_t N>
struct TensorPtrs {
  std::array<char*, N> data;
  std::array<Storage, N> storage;
  bool is_double;  // float64 params: opmath double
};

template <size_t N>
TensorPtrs<N> pointers_of(const TensorLists<N>& args, size_t i) {
  TensorPtrs<N> t{};
  for (size_t k = 0; k < N; ++k) {
    if (args.lists[k].empty()) continue;
    const at::Tensor& x = args.lists[k][i];
    t.data[k] = static_cast<char*>(x.data_ptr());
    t.storage[k] = storage_of(x.scalar_type());
  }
  t.is_double = args.lists[kParamList][i].scalar_type() == at::kDouble;
  return t;
}

template <typename T, size_t N>
Chunk<T, N> chunk_of(const TensorPtrs<N>& t, int64_t begin, int64_t end,
                     const std::optional<double>& unscale_grads) {
  Chunk<T, N> c{};
  c.storage = t.storage;
  for (size_t k = 0; k < N; ++k)
    if (t.data[k] != nullptr) c.data[k] = t.data[k] + begin * c.element_size(k);
  c.size = end - begin;
  if (unscale_grads) c.unscale_grads = static_cast<T>(*unscale_grads);
  return c;
}

}  // namespace detail

// Calls f(i, chunk) on chunks that together cover every element of every param
// i once (at most kChunkElements each, in parallel), with a Chunk<float, N> or,
// for float64 params, a Chunk<double, N>.
template <size_t N, typename F>
void multi_tensor_apply(TensorLists<N>& args, const F& f) {
  const size_t count = args.lists[kParamList].size();
  if (args.unscale_grads) args.mutated[kGradList] = true;
  // Strided tensors are updated through contiguous copies, written back after.
  DenseCopies dense;
  for (size_t i = 0; i < count; ++i) dense.make_flat(args.lists, args.mutated, i);

  std::vector<detail::TensorPtrs<N>> tensors;
  tensors.reserve(count);
  struct WorkItem {
    int64_t tensor;
    int64_t begin;
    int64_t end;
    int64_t offset;  // the group's elements before it
  };
  std::vector<WorkItem> chunks;
  int64_t elements = 0;
  for (size_t i = 0; i < count; ++i) {
    const int64_t n = args.lists[kParamList][i].numel();
    if (n == 0) {
      tensors.emplace_back();
      continue;
    }
    tensors.push_back(detail::pointers_of(args, i));
    for (int64_t b = 0; b < n; b += kChunkElements)
      chunks.push_back({static_cast<int64_t>(i), b, std::min(n, b + kChunkElements), elements + b});
    elements += n;
  }
  if (elements == 0) return;
  // Each thread takes an equal share of the group's elements, at least
  // kParallelElements (a call on fewer runs on this thread alone): the chunks
  // that overlap it, cut at its ends. Equal shares of the chunks would not do:
  // a group's chunks differ in size, and ResNet-50's tensors split by count left
  // one of two threads 13% longer.
  const int64_t parts = std::clamp<int64_t>(elements / kParallelElements, 1, at::get_num_threads());

  // flatten: the rule's chunk function, its element op and its rule are compiled into this
  // body, where the coefficients are locals whose flags the vectorizer can fold (left as
  // calls, GCC gave up inlining AdaBelief's op in a large kernel and did not vectorize it).
  at::parallel_for(0, parts, 1, [&](int64_t first_part, int64_t last_part) __attribute__((flatten)) {
    const int64_t from = elements * first_part / parts;
    const int64_t to = elements * last_part / parts;
    // The chunk holding element `from`: the last one that starts at or before it.
    auto c = std::upper_bound(chunks.begin(), chunks.end(), from,
                              [](int64_t x, const WorkItem& item) { return x < item.offset; });
    for (--c; c != chunks.end() && c->offset < to; ++c) {
      const int64_t begin = std::max(c->begin, from - c->offset + c->begin);
      const int64_t end = std::min(c->end, to - c->offset + c->begin);
      const auto& t = tensors[c->tensor];
      if (t.is_double)
        f(c->tensor, detail::chunk_of<double>(t, begin, end, args.unscale_grads));
      else
        f(c->tensor, detail::chunk_of<float>(t, begin, end, args.unscale_grads));
    }
  });

  dense.copy_back();
}

}  // namespace fused_optim::cpu
