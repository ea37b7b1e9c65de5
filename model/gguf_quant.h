// Quantizing float32 rows into the engine's weight kinds (codec/engine/blocks.h), for writing
// GGUF files: lorazip's own reference quantizers, torch-free. They are not llama.cpp's (which
// searches scales with importance weights); they are simple, deterministic (the same bytes on
// every machine), and never clamp a value further than the bound below.
//
// Per kind (A = the largest |x| in the block; for Q4_K, Q5_K and Q6_K in the super-block of 256):
//   F32          copied.
//   F16, BF16    rounded to nearest even.
//   Q8_0         d = A / 127 rounded up to an f16; q = round(x / d).
//   Q4_0         the value m of largest |x| maps to code 0: d = -m / 8 (magnitude rounded up to an
//                f16); q = round(x / d) + 8, so values of m's sign are never clamped and the
//                other side is clamped at +7 d.
//   Q4_1         m = min rounded down to an f16, d = (max - m) / 15 rounded up; q = round((x - m) / d).
//   Q4_K, Q5_K   per sub-block of 32: lo = min(min x, 0), hi = max x; the super-block's dmin and d
//                (f16, rounded up) and each sub-block's 6-bit min and scale (rounded up) are chosen
//                so that [-dmin * mn, d * sc * (15 | 31) - dmin * mn] covers [lo, hi];
//                q = round((x + dmin * mn) / (d * sc)).
//   Q6_K         per sub-block of 16, the value m of largest |x| gives the scale -m / 32; d is the
//                largest |scale| / 127 (f16, rounded up) and each int8 scale rounds away from zero,
//                so m maps to code 0 (x = -32 ds); q = round(x / ds) + 32 (the other side is
//                clamped at +31 ds).
// Rounding to an integer is to nearest, ties to even; every scale and min is computed with the
// same float operations as dequantize_row, so the bound holds for the floats it returns.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "codec/engine/blocks.h"
#include "model/gguf.h"

namespace lorazip {

// The bytes of `n` values of `kind` (row_bytes(kind, n) of them) quantized from x[0..n).
// std::invalid_argument when n is negative or not a whole number of the kind's blocks, when a
// value is not finite, or when the values are too large for the kind's f16 scales (F16: |x| above
// 65504; the quantized kinds: roughly |x| above 65504 times their largest code).
std::string quantize_row(engine::WeightKind kind, const float* x, int64_t n);

// A bound on |dequantize_row(quantize_row(x))[i] - x[i]| given A = the largest |x| of the block
// (K-quants: super-block) holding value i, from the choices above: F32 0, F16 A 2^-11 + 2^-25,
// BF16 A 2^-8, Q8_0 A / 250 + 2^-24, Q4_0 0.1252 A, Q4_1 0.0670 A, Q4_K 0.0685 A, Q5_K 0.0332 A,
// Q6_K 0.0316 A (the quantized kinds plus a few 2^-24 for f16 scales below the normal range).
double quantize_error_bound(engine::WeightKind kind, double amax);

// Adds tensor `name` of ggml shape `ne` to `w`, its values (numel floats, ne[0] contiguous)
// quantized to `kind` row by row. std::invalid_argument naming the tensor when ne[0] is not whole
// blocks of the kind or a value cannot be quantized (see quantize_row), and as add_tensor.
void add_quantized_tensor(GgufWriter& w, const std::string& name, const std::vector<int64_t>& ne, engine::WeightKind kind,
                          const float* values);

}  // namespace lorazip
