// bf16 and fp16 <-> float for blocks of elements, for the loops that run on
// float copies of low-precision tensors (multi_tensor_cpu.h). Each store
// rounds once, to nearest even, as torch's own conversions do; loads are exact.
//
// fp16: GCC vectorizes no fp16 conversion inside a loop; with AVX-512 (or
// F16C) the hardware converts sixteen (eight) elements an instruction, and
// without either (x86-64-v2 and older builds) c10::Half's scalar conversion runs.
// bf16: integer arithmetic with c10's rounding (NaN becomes 0x7FC0), written
// out for AVX-512 (GCC's own vectorization of the loops was 1.6x slower for
// Momentum) and left to the compiler elsewhere. Not the AVX512-BF16 instruction, which flushes
// subnormals to zero where torch keeps them.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__F16C__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <c10/util/Half.h>

namespace fused_optim::cpu {

inline void half_to_float(const uint16_t* __restrict src, float* __restrict dst, int64_t n) {
  int64_t j = 0;
#if defined(__AVX512F__)
  for (; j + 16 <= n; j += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + j));
    _mm512_storeu_ps(dst + j, _mm512_cvtph_ps(h));
  }
#endif
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
#if defined(__AVX512F__)
  for (; j + 16 <= n; j += 16) {
    const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(src + j), kNearestEven);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j), h);
  }
#endif
  for (; j + 8 <= n; j += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + j), kNearestEven);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j), h);
  }
  for (; j < n; ++j) dst[j] = _cvtss_sh(src[j], kNearestEven);
#else
  for (; j < n; ++j) dst[j] = c10::Half(src[j]).x;
#endif
}

inline float bfloat16_bits_to_float(uint16_t x) {
  const uint32_t bits = static_cast<uint32_t>(x) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(float));
  return f;
}

// Rounded to nearest even, as c10::BFloat16(float).
inline uint16_t float_to_bfloat16_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(float));
  const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>(f != f ? 0x7FC0u : rounded);
}

inline void bfloat16_to_float(const uint16_t* __restrict src, float* __restrict dst, int64_t n) {
  int64_t j = 0;
#if defined(__AVX512F__)
  for (; j + 16 <= n; j += 16) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + j)));
    _mm512_storeu_ps(dst + j, _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16)));
  }
#endif
  for (; j < n; ++j) {
    const uint32_t bits = static_cast<uint32_t>(src[j]) << 16;
    std::memcpy(dst + j, &bits, sizeof(float));
  }
}

inline void float_to_bfloat16(const float* __restrict src, uint16_t* __restrict dst, int64_t n) {
  int64_t j = 0;
#if defined(__AVX512F__)
  const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7FFF);
  const __m512i nan = _mm512_set1_epi32(0x7FC0);
  for (; j + 16 <= n; j += 16) {
    const __m512 x = _mm512_loadu_ps(src + j);
    const __m512i bits = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), one);
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, bias), lsb), 16);
    rounded = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), rounded, nan);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + j), _mm512_cvtepi32_epi16(rounded));
  }
#endif
  for (; j < n; ++j) {
    uint32_t bits;
    std::memcpy(&bits, src + j, sizeof(float));
    const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    dst[j] = static_cast<uint16_t>(src[j] != src[j] ? 0x7FC0u : rounded);
  }
}

}  // namespace fused_optim::cpu
