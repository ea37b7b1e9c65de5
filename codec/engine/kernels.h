// The engine's kernels: one table of functions per instruction set, all computing the same bits
// (docs/engine-arithmetic.md). Every float kernel works in 16 virtual lanes: a SIMD path holds them
// in 16/W registers of W lanes, the scalar path in 16 floats; no float operation ever crosses lanes
// except the fixed reduction trees. Integer block products (arithmetic version 2) are exact, so
// their order inside a block is free; every float step after them is lane-wise.
#pragma once
#include <cstdint>

#include "codec/engine/blocks.h"

namespace lorazip::engine {

constexpr int64_t kPanel = 16;  // columns per weight panel = virtual lanes
constexpr int64_t kQBlock = 32; // values per activation block (arithmetic version 2)

// Activations quantized for the integer block products: rows of K values (K a multiple of 32) cut
// into blocks of 32, each with its codes q[32] in -127..127, its scale d (float) and the sums of
// its two halves' codes.
struct QuantizedRows {
  const int8_t* q = nullptr;    // [M][K]
  const float* d = nullptr;     // [M][K / 32]
  const int32_t* s16 = nullptr; // [M][K / 16]: s16[2b + h] = sum of q[32b + 16h .. 32b + 16h + 15]
  int64_t k = 0;
};

// The bytes of one packed panel (16 rows) of a matrix of kind `kind` with K columns
// (codec/engine/weights.h describes the layouts).
int64_t panel_bytes(WeightKind kind, int64_t K);

struct Kernels {
  // y[m, n] = sum_{k=0..K-1} x[m, k] * W[n, k] for m < M, n < N (accumulated in order k = 0, 1, ...
  // from +0, multiply then add). Panel p of W starts at panels + p * panel_stride: [K][16], of
  // float (matmul), IEEE half (matmul_f16) or bfloat16 (matmul_bf16) values, each converted exactly.
  void (*matmul)(const float* x, int64_t ldx, int64_t M, int64_t K, const float* panels, int64_t panel_stride,
                 int64_t N, float* y, int64_t ldy);
  void (*matmul_f16)(const float* x, int64_t ldx, int64_t M, int64_t K, const uint16_t* panels, int64_t panel_stride,
                     int64_t N, float* y, int64_t ldy);
  void (*matmul_bf16)(const float* x, int64_t ldx, int64_t M, int64_t K, const uint16_t* panels,
                      int64_t panel_stride, int64_t N, float* y, int64_t ldy);
  // Fixed-tree sum of x[0..n) (lane j sums x[i], i = j mod 16, in order, from +0; then lanes
  // j + 8, j + 4, j + 2, j + 1 fold in).
  float (*tree_sum)(const float* x, int64_t n);
  // The same tree over x[i] * x[i].
  float (*tree_sum_squares)(const float* x, int64_t n);
  // Fixed-tree maximum (a > b ? a : b), -inf for n = 0.
  float (*tree_max)(const float* x, int64_t n);
  // out[i] = exp(x[i] - m), the engine's exp.
  void (*exp_shifted)(const float* x, int64_t n, float m, float* out);
  // x[i] = x[i] / d.
  void (*divide)(float* x, int64_t n, float d);
  // out[i] = gate[i] / (1 + exp(-gate[i])) * up[i].
  void (*silu_mul)(const float* gate, const float* up, int64_t n, float* out);
  // Arithmetic version 2: quantizes one row x[0..K) (K a multiple of 32) into q, d, s16.
  void (*quantize_row)(const float* x, int64_t K, int8_t* q, float* d, int32_t* s16);
  // Arithmetic version 2: y[m, n] for m < M, n < N of a block-quantized matrix of kind `kind`
  // whose panels (K = x.k columns) start at `panels`, panel_stride bytes apart, from the quantized
  // rows x (row m at x.q + m * K, x.d + m * K / 32, x.s16 + m * K / 16); y row m at y + m * ldy.
  void (*qmatmul)(WeightKind kind, const QuantizedRows& x, int64_t M, const uint8_t* panels, int64_t panel_stride,
                  int64_t N, float* y, int64_t ldy);
};

const Kernels& kernels_scalar();
// Tests only: run every engine call on `k` instead of the selected path (nullptr: back to normal).
// engine_hash uses it to run the 16-lane source on CPUs without AVX-512.
void override_kernels_for_testing(const Kernels* k);
#if defined(__x86_64__)
const Kernels& kernels_sse2();
const Kernels& kernels_avx2();
const Kernels& kernels_avx512();
const Kernels& kernels_avx512vnni();
#endif
#if defined(__aarch64__)
const Kernels& kernels_neon();
#endif

}  // namespace lorazip::engine
