// AVX-512 kernels with VNNI: the float kernels of kernels_avx512.cpp (the same source, the same
// bits) and integer block products with vpdpbusd.
#if defined(__x86_64__)
#include <cstdint>
#include <cstring>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vnni"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vnni")
#endif
#define LZ_W 16
#define LZ_INT_AVX512VNNI 1
#define LZ_F16C_512 1
#define LZ_KERNELS_FN kernels_avx512vnni
#include "codec/engine/kernels.inc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
