// What the element loops of both backends share about an operator's tensor
// lists. Each rule names its lists in rules.h (adam_list::kExpAvg, ...), in the
// order of its schema (ops.cpp): the params first, the grads second, and the
// model params (fp32 master weights) last, so that a rule's element op reads
// x[kParam], x[kGrad], ... on both backends. ATen-free: the CUDA kernel files
// include it and compile with nvcc alone.
#pragma once

#include <type_traits>

#if defined(__CUDACC__)
#define OPT_LISTS_HD __host__ __device__
#else
#define OPT_LISTS_HD
#endif

namespace fused_optim {

constexpr int kParamList = 0;
constexpr int kGradList = 1;

// Bit mask of list indices: which lists an element op reads and which it writes.
template <typename... I>
OPT_LISTS_HD constexpr unsigned lists(I... indices) {
  return ((1u << indices) | ... | 0u);
}

// Turns a runtime flag into a compile-time one, so each loop or kernel is
// specialized without per-element branches (and unused state is neither read
// nor written). Returns what f returns.
template <typename F>
decltype(auto) with_flag(bool flag, const F& f) {
  return flag ? f(std::true_type{}) : f(std::false_type{});
}

}  // namespace fused_optim
