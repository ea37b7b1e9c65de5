// The stored weight kinds: traits, half / bfloat16 conversion, and block unpacking and
// dequantization (the layouts and formulas are in blocks.h).
#include "codec/engine/blocks.h"

#include <cstring>

namespace lorazip::engine {
namespace {

constexpr KindTraits kTraits[kWeightKinds] = {
    {WeightKind::F32, "F32", 0, 1, 4, false},       {WeightKind::F16, "F16", 1, 1, 2, false},
    {WeightKind::BF16, "BF16", 30, 1, 2, false},    {WeightKind::Q8_0, "Q8_0", 8, 32, 34, true},
    {WeightKind::Q4_0, "Q4_0", 2, 32, 18, true},    {WeightKind::Q4_1, "Q4_1", 3, 32, 20, true},
    {WeightKind::Q4_K, "Q4_K", 12, 256, 144, true}, {WeightKind::Q5_K, "Q5_K", 13, 256, 176, true},
    {WeightKind::Q6_K, "Q6_K", 14, 256, 210, true},
};

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

}  // namespace

const KindTraits& kind_traits(WeightKind k) { return kTraits[static_cast<int>(k)]; }
const char* kind_name(WeightKind k) { return kind_traits(k).name; }

bool kind_from_ggml(uint32_t ggml_type, WeightKind* out) {
  for (const KindTraits& t : kTraits)
    if (t.ggml_type == ggml_type) {
      *out = t.kind;
      return true;
    }
  return false;
}

uint64_t row_bytes(WeightKind k, int64_t n) {
  const KindTraits& t = kind_traits(k);
  if (n < 0 || n % t.block != 0) return 0;
  return static_cast<uint64_t>(n / t.block) * t.block_bytes;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (man << 13);  // infinity or NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {  // subnormal half: normalize (exact: the float has room for every bit)
    int e = -1;
    do {
      ++e;
      man <<= 1;
    } while ((man & 0x400u) == 0);
    bits = sign | ((112 - e) << 23) | ((man & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_f32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u);  // NaN
  if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds to infinity (>= 65520)
  if (ax < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    if (ax < 0x33000000u) return sign;  // below half the smallest subnormal: rounds to 0 (ties at 2^-25 too)
    const uint32_t e = ax >> 23;
    const uint32_t man = (ax & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - e;  // value = man * 2^(e - 150); subnormal unit 2^-24
    uint32_t q = man >> shift;
    const uint32_t rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t q = ((ax >> 23) - 112) << 10 | ((ax >> 13) & 0x3FFu);
  const uint32_t rem = ax & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ++q;  // may carry into the exponent: still right
  return static_cast<uint16_t>(sign | q);
}

uint16_t f32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  const uint32_t rounding = 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

void k_scale_min(const uint8_t* q, int j, uint8_t* sc, uint8_t* mn) {
  if (j < 4) {
    *sc = q[j] & 63;
    *mn = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
    *mn = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

void block_codes(WeightKind k, const uint8_t* b, int16_t* code) {
  switch (k) {
    case WeightKind::Q8_0:
      for (int i = 0; i < 32; ++i) code[i] = static_cast<int8_t>(b[2 + i]);
      return;
    case WeightKind::Q4_0:
      for (int i = 0; i < 16; ++i) code[i] = b[2 + i] & 15, code[i + 16] = b[2 + i] >> 4;
      return;
    case WeightKind::Q4_1:
      for (int i = 0; i < 16; ++i) code[i] = b[4 + i] & 15, code[i + 16] = b[4 + i] >> 4;
      return;
    case WeightKind::Q4_K:
    case WeightKind::Q5_K: {
      const bool five = k == WeightKind::Q5_K;
      const uint8_t* qh = b + 16;
      const uint8_t* qs = b + (five ? 48 : 16);
      for (int c = 0; c < 4; ++c)
        for (int l = 0; l < 32; ++l) {
          int lo = qs[32 * c + l] & 15, hi = qs[32 * c + l] >> 4;
          if (five) {
            lo |= ((qh[l] >> (2 * c)) & 1) << 4;
            hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
          }
          code[64 * c + l] = static_cast<int16_t>(lo);
          code[64 * c + 32 + l] = static_cast<int16_t>(hi);
        }
      return;
    }
    case WeightKind::Q6_K: {
      const uint8_t* ql = b;
      const uint8_t* qh = b + 128;
      for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 32; ++l) {
          const uint8_t* L = ql + 64 * h;
          const int H = qh[32 * h + l];
          code[128 * h + l] = static_cast<int16_t>((L[l] & 15) | ((H >> 0) & 3) << 4);
          code[128 * h + 32 + l] = static_cast<int16_t>((L[32 + l] & 15) | ((H >> 2) & 3) << 4);
          code[128 * h + 64 + l] = static_cast<int16_t>((L[l] >> 4) | ((H >> 4) & 3) << 4);
          code[128 * h + 96 + l] = static_cast<int16_t>((L[32 + l] >> 4) | ((H >> 6) & 3) << 4);
        }
      return;
    }
    default:
      return;
  }
}

void dequantize_row(WeightKind k, const uint8_t* src, float* dst, int64_t n) {
  switch (k) {
    case WeightKind::F32:
      if (n) std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case WeightKind::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(le16(src + 2 * i));
      return;
    case WeightKind::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(le16(src + 2 * i));
      return;
    default:
      break;
  }
  const KindTraits& t = kind_traits(k);
  int16_t code[kQK];
  for (int64_t b0 = 0; b0 < n; b0 += t.block, src += t.block_bytes, dst += t.block) {
    block_codes(k, src, code);
    switch (k) {
      case WeightKind::Q8_0: {
        const float d = f16_to_f32(le16(src));
        for (int i = 0; i < 32; ++i) dst[i] = d * static_cast<float>(code[i]);
        break;
      }
      case WeightKind::Q4_0: {
        const float d = f16_to_f32(le16(src));
        for (int i = 0; i < 32; ++i) dst[i] = d * static_cast<float>(code[i] - 8);
        break;
      }
      case WeightKind::Q4_1: {
        const float d = f16_to_f32(le16(src)), m = f16_to_f32(le16(src + 2));
        for (int i = 0; i < 32; ++i) dst[i] = d * static_cast<float>(code[i]) + m;
        break;
      }
      case WeightKind::Q4_K:
      case WeightKind::Q5_K: {
        const float d = f16_to_f32(le16(src)), dmin = f16_to_f32(le16(src + 2));
        for (int s = 0; s < 8; ++s) {
          uint8_t sc, mn;
          k_scale_min(src + 4, s, &sc, &mn);
          const float ds = d * static_cast<float>(sc), ms = dmin * static_cast<float>(mn);
          for (int i = 32 * s; i < 32 * s + 32; ++i) dst[i] = ds * static_cast<float>(code[i]) - ms;
        }
        break;
      }
      case WeightKind::Q6_K: {
        const float d = f16_to_f32(le16(src + 208));
        const int8_t* sc = reinterpret_cast<const int8_t*>(src + 192);
        for (int s = 0; s < 16; ++s) {
          const float ds = d * static_cast<float>(sc[s]);
          for (int i = 16 * s; i < 16 * s + 16; ++i) dst[i] = ds * static_cast<float>(code[i] - 32);
        }
        break;
      }
      default:
        break;
    }
  }
}

}  // namespace lorazip::engine
