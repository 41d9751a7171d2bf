// Element types of the CUDA kernels: the opmath type each is computed in, the
// conversions (rounded once, to nearest even, when stored), and the dispatch
// from the glue's ScalarType to compile-time types (op_lists.h's with_flag does
// the same for runtime flags).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "launch.h"

namespace fused_optim::cuda {

template <typename S>
struct OpMath {
  using type = S;
};
template <>
struct OpMath<__half> {
  using type = float;
};
template <>
struct OpMath<__nv_bfloat16> {
  using type = float;
};
template <typename S>
using opmath_t = typename OpMath<S>::type;

// Explicit intrinsics: torch builds with __CUDA_NO_HALF_CONVERSIONS__ and
// __CUDA_NO_BFLOAT16_CONVERSIONS__, which remove the implicit ones.
__device__ __forceinline__ float to_opmath(float x) { return x; }
__device__ __forceinline__ double to_opmath(double x) { return x; }
__device__ __forceinline__ float to_opmath(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_opmath(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename S>
__device__ __forceinline__ S from_opmath(opmath_t<S> x) {
  if constexpr (std::is_same_v<S, __half>)
    return __float2half_rn(x);
  else if constexpr (std::is_same_v<S, __nv_bfloat16>)
    return __float2bfloat16_rn(x);
  else
    return x;
}

template <typename S>
struct TypeTag {
  using type = S;
};

// Calls f(TypeTag<S>{}) with the element type S of `dtype`.
template <typename F>
cudaError_t dispatch_scalar_type(ScalarType dtype, const F& f) {
  switch (dtype) {
    case ScalarType::kFloat:
      return f(TypeTag<float>{});
    case ScalarType::kDouble:
      return f(TypeTag<double>{});
    case ScalarType::kHalf:
      return f(TypeTag<__half>{});
    case ScalarType::kBFloat16:
      return f(TypeTag<__nv_bfloat16>{});
  }
  return cudaErrorInvalidValue;
}

// Calls f(TypeTag<S>{}, TypeTag<G>{}) with the element types of a launch: S of
// the params and their state, G of the grads and model params. G == S, or
// (fp32 master weights) S is float and G half or bfloat16.
template <typename F>
cudaError_t dispatch_element_types(ElementTypes types, const F& f) {
  if (types.param == types.grad)
    return dispatch_scalar_type(types.param, [&](auto s) { return f(s, s); });
  if (types.param != ScalarType::kFloat) return cudaErrorInvalidValue;
  switch (types.grad) {
    case ScalarType::kHalf:
      return f(TypeTag<float>{}, TypeTag<__half>{});
    case ScalarType::kBFloat16:
      return f(TypeTag<float>{}, TypeTag<__nv_bfloat16>{});
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace fused_optim::cuda
