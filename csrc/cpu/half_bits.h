// fp16 as the CPU loops load and store it. c10::Half converts with the scalar
// F16C instruction (one element at a time), and GCC cannot vectorize _Float16
// without AVX512-FP16, so fp16 loops ran 4-5x slower than torch's. These
// conversions are branch-free integer and float operations that the compiler
// vectorizes; they are exact IEEE binary16 <-> binary32 conversions (round to
// nearest even, subnormals, infinities and NaN), by the method of Maratyszcza's
// FP16 library, which c10 also uses where F16C is missing.
// tests/test_operators.py checks them bit for bit against torch's conversions.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace fused_optim::cpu {

inline float half_bits_to_float(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;  // exponent and mantissa, sign shifted out
  // Normal numbers, infinities and NaN: move the fields into place, rebias by 2^-112.
  const float normalized = std::bit_cast<float>((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  // Subnormals: the mantissa under an exponent of 2^-1, less 0.5, is m * 2^-24 exactly.
  const float subnormal = std::bit_cast<float>((two_w >> 17) | (126u << 23)) - 0.5f;
  const bool is_subnormal = two_w < (1u << 27);
  return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(is_subnormal ? subnormal : normalized));
}

inline uint16_t float_to_half_bits(float f) {
  // Scaling up then down rounds the mantissa to 10 bits (to nearest even) in the
  // float unit and sends values beyond the fp16 range to infinity.
  float base = (std::fabs(f) * 0x1.0p+112f) * 0x1.0p-110f;
  const uint32_t w = std::bit_cast<uint32_t>(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  bias = bias < 0x71000000u ? 0x71000000u : bias;  // subnormal results share one exponent
  base = std::bit_cast<float>((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = std::bit_cast<uint32_t>(base);
  const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = bits & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  const bool is_nan = shl1_w > 0xFF000000u;
  return static_cast<uint16_t>((sign >> 16) | (is_nan ? 0x7E00u : nonsign));
}

// An fp16 element with the conversions above; same size and bits as at::Half.
struct Half16 {
  uint16_t bits;
  Half16() = default;
  Half16(float f) : bits(float_to_half_bits(f)) {}  // NOLINT: implicit, as at::Half
  operator float() const { return half_bits_to_float(bits); }
};

}  // namespace fused_optim::cpu
