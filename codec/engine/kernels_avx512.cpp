// AVX-512 kernels: the 16 virtual lanes in one 16-lane register.
#if defined(__x86_64__)
#include <cstdint>
#include <cstring>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC target("avx512f")
#endif
#define LZ_W 16
#define LZ_KERNELS_FN kernels_avx512
#include "codec/engine/kernels.inc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
