// The weight kinds the coding engine computes with, as llama.cpp's GGUF files store them: float
// (F32, F16, BF16) and block-quantized (Q8_0, Q4_0, Q4_1 in blocks of 32 values; Q4_K, Q5_K, Q6_K
// in super-blocks of 256). This header is the one description of their bytes in lorazip: the
// engine packs from it, the GGUF reader dequantizes with it, and the GGUF writer's quantizers
// write it. Dependency-free (the engine cross-compiles alone).
//
// Every dequantized value is a fixed sequence of correctly rounded float32 operations on the
// stored codes and scales (the formulas of dequantize_row below, the same as ggml's reference
// dequantization), so it is the same float on every machine.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lorazip::engine {

enum class WeightKind : uint8_t { F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K };
constexpr int kWeightKinds = 9;

struct KindTraits {
  WeightKind kind;
  const char* name;     // "Q4_K"
  uint32_t ggml_type;   // ggml's type id (GGUF tensor info)
  uint32_t block;       // values per block along a row (1 for float kinds)
  uint32_t block_bytes; // bytes per block
  bool quantized;
};
const KindTraits& kind_traits(WeightKind k);
const char* kind_name(WeightKind k);
// The kind of a ggml type id; false for a type the engine does not compute with.
bool kind_from_ggml(uint32_t ggml_type, WeightKind* out);

// Bytes of a row of `n` values (n a multiple of the block size); 0 when it is not.
uint64_t row_bytes(WeightKind k, int64_t n);

// IEEE half and bfloat16 to float: exact (every half and bfloat16 is a float).
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t h);
// float to half, rounded to nearest even (overflow to infinity); for writers and tests.
uint16_t f32_to_f16(float f);
uint16_t f32_to_bf16(float f);  // rounded to nearest even; NaN stays NaN

// Block layouts (little-endian), as in ggml:
//   Q8_0  34 B: d f16, qs[32] int8.                        x = d * q
//   Q4_0  18 B: d f16, qs[16]: value j < 16 is the low nibble of qs[j], j + 16 its high nibble.
//                                                          x = d * (q - 8)
//   Q4_1  20 B: d f16, m f16, qs[16] as Q4_0.              x = d * q + m
//   Q4_K 144 B: d f16, dmin f16, scales[12] (eight 6-bit scales and eight 6-bit mins, see
//               k_scale_min), qs[128]: values 64c .. 64c+31 are the low nibbles of qs[32c + l],
//               values 64c+32 .. 64c+63 their high nibbles (c = 0..3). Sub-block s = value / 32.
//                                                          x = (d * sc[s]) * q - dmin * mn[s]
//   Q5_K 176 B: d, dmin, scales[12], qh[32], qs[128]: low 4 bits as Q4_K; the 5th bit of value
//               64c + l is bit 2c of qh[l], of value 64c + 32 + l bit 2c + 1.
//                                                          x = (d * sc[s]) * q - dmin * mn[s]
//   Q6_K 210 B: ql[128], qh[64], scales[16] int8, d f16. In half h (values 128h .. 128h+127),
//               l < 32: value 128h + l      = ql[64h + l] & 15      | ((qh[32h + l] >> 0) & 3) << 4,
//                       value 128h + 32 + l = ql[64h + 32 + l] & 15 | ((qh[32h + l] >> 2) & 3) << 4,
//                       value 128h + 64 + l = ql[64h + l] >> 4      | ((qh[32h + l] >> 4) & 3) << 4,
//                       value 128h + 96 + l = ql[64h + 32 + l] >> 4 | ((qh[32h + l] >> 6) & 3) << 4.
//               Sub-block s = value / 16.                  x = (d * sc[s]) * (q - 32)
constexpr int kQK = 256;  // values per K-quant super-block

// Q4_K / Q5_K: the 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes.
void k_scale_min(const uint8_t* scales12, int j, uint8_t* sc, uint8_t* mn);

// One block's integer codes, unpacked: code[i] for i < block (Q8_0: -128..127; Q4_0, Q4_1,
// Q4_K: 0..15; Q5_K: 0..31; Q6_K: 0..63, before the offsets of the formulas above).
void block_codes(WeightKind k, const uint8_t* block, int16_t* code);

// Dequantizes `n` values (whole blocks) from `src` into `dst` with the formulas above (float
// kinds: converted exactly). The caller checked the sizes.
void dequantize_row(WeightKind k, const uint8_t* src, float* dst, int64_t n);

}  // namespace lorazip::engine
