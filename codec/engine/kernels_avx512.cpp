// AVX-512 kernels: the 16 virtual lanes in one 16-lane register; integer block products with
// vpmaddubsw + vpmaddwd (AVX512BW) for CPUs without VNNI (kernels_avx512vnni.cpp has it).
#if defined(__x86_64__)
#include <cstdint>
#include <cstring>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw")
#endif
#define LZ_W 16
#define LZ_INT_AVX512BW 1
#define LZ_F16C_512 1
#define LZ_KERNELS_FN kernels_avx512
#include "codec/engine/kernels.inc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
