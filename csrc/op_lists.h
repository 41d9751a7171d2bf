// The tensor lists of each operator, named, in the order of its schema
// (ops.cpp), shared by the CPU loops and the CUDA functors: a rule's element
// op reads x[kParam], x[kGrad], ... on both backends. Every operator has the
// params first, the grads second, and the model params (fp32 master weights)
// last. ATen-free: the CUDA kernel files include it and compile with nvcc alone.
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

namespace momentum_list {
enum : int { kParam, kGrad, kBuffer, kModelParam, kCount };
}
namespace rmsprop_list {
enum : int { kParam, kGrad, kSquareAvg, kGradAvg, kBuffer, kModelParam, kCount };
}
namespace adam_list {
enum : int { kParam, kGrad, kExpAvg, kExpAvgSq, kMaxExpAvgSq, kModelParam, kCount };
}
namespace diffgrad_list {
enum : int { kParam, kGrad, kExpAvg, kExpAvgSq, kPreviousGrad, kModelParam, kCount };
}
namespace adagrad_list {
enum : int { kParam, kGrad, kSum, kModelParam, kCount };
}
namespace radam_list {
enum : int { kParam, kGrad, kExpAvg, kExpAvgSq, kModelParam, kCount };
}
namespace adabelief_list {
enum : int { kParam, kGrad, kExpAvg, kExpAvgVar, kMaxExpAvgVar, kModelParam, kCount };
}
static_assert(momentum_list::kModelParam == momentum_list::kCount - 1 &&
                  rmsprop_list::kModelParam == rmsprop_list::kCount - 1 &&
                  adam_list::kModelParam == adam_list::kCount - 1 &&
                  diffgrad_list::kModelParam == diffgrad_list::kCount - 1 &&
                  adagrad_list::kModelParam == adagrad_list::kCount - 1 &&
                  radam_list::kModelParam == radam_list::kCount - 1 &&
                  adabelief_list::kModelParam == adabelief_list::kCount - 1,
              "the model params are every operator's last list");

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
