// AVX2 kernels: the 16 virtual lanes in two 8-lane registers. The file targets AVX2 and F16C
// without FMA; with -ffp-contract=off a multiply and an add stay two roundings anyway. Integer
// block products with vpmaddubsw + vpmaddwd.
#if defined(__x86_64__)
#include <cstdint>
#include <cstring>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,f16c"))), apply_to = function)
#else
#pragma GCC target("avx2,f16c")
#endif
#define LZ_W 8
#define LZ_INT_AVX2 1
#define LZ_F16C_256 1
#define LZ_KERNELS_FN kernels_avx2
#include "codec/engine/kernels.inc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
