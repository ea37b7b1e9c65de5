// The engine's kernels: one table of functions per instruction set, all computing the same bits
// (docs/engine-arithmetic.md). Every kernel works in 16 virtual lanes: a SIMD path holds them in
// 16/W registers of W lanes, the scalar path in 16 floats; no operation ever crosses lanes except
// the fixed reduction tree of tree_sum / tree_max.
#pragma once
#include <cstdint>

namespace lorazip::engine {

constexpr int64_t kPanel = 16;  // columns per weight panel = virtual lanes

struct Kernels {
  // y[m, n] = sum_{k=0..K-1} x[m, k] * W[n, k] for m < M, n < N (accumulated in order k = 0, 1, ...
  // from +0, multiply then add). Panel p of W starts at panels + p * panel_stride: [K][16].
  void (*matmul)(const float* x, int64_t ldx, int64_t M, int64_t K, const float* panels, int64_t panel_stride,
                 int64_t N, float* y, int64_t ldy);
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
};

const Kernels& kernels_scalar();
// Tests only: run every engine call on `k` instead of the selected path (nullptr: back to normal).
// engine_hash uses it to run the 16-lane source on CPUs without AVX-512.
void override_kernels_for_testing(const Kernels* k);
#if defined(__x86_64__)
const Kernels& kernels_sse2();
const Kernels& kernels_avx2();
const Kernels& kernels_avx512();
#endif
#if defined(__aarch64__)
const Kernels& kernels_neon();
#endif

}  // namespace lorazip::engine
