// fp16 <-> float for whole blocks of elements, for the loops that run on float
// copies of fp16 tensors (multi_tensor_cpu.h): GCC does not vectorize fp16
// conversions inside a loop. With F16C the hardware converts eight elements an
// instruction, rounding to nearest even as torch's own conversion does;
// without it (x86-64-v2 and older builds), c10::Half's scalar conversion.
#pragma once

#include <cstdint>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include <c10/util/Half.h>

namespace fused_optim::cpu {

inline void half_to_float(const uint16_t* __restrict src, float* __restrict dst, int64_t n) {
  int64_t j = 0;
#if defined(__F16C__)
  for (; j + 8 <= n; j += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j));
    _mm256_storeu_ps(dst + j, _mm256_cvtph_ps(h));
  }
  for (; j < n; ++j) dst[j] = _cvtsh_ss(src[j]);
#else
  for (; j < n; ++j) dst[j] = static_cast<float>(c10::Half(src[j], c10::Half::from_bits()));
#endif
}

inline void float_to_half(const float* __restrict src, uint16_t* __restrict dst, int64_t n) {
  int64_t j = 0;
#if defined(__F16C__)
  constexpr int kNearestEven = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  for (; j + 8 <= n; j += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + j), kNearestEven);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j), h);
  }
  for (; j < n; ++j) dst[j] = _cvtss_sh(src[j], kNearestEven);
#else
  for (; j < n; ++j) dst[j] = c10::Half(src[j]).x;
#endif
}

}  // namespace fused_optim::cpu
