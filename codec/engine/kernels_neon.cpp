// NEON kernels (every aarch64 CPU): the 16 virtual lanes in four 4-lane registers. Advanced SIMD
// on aarch64 is IEEE (round to nearest, no flush) unless FPCR says otherwise, which the engine
// pins per call.
#if defined(__aarch64__)
#define LZ_W 4
#define LZ_KERNELS_FN kernels_neon
#include "codec/engine/kernels.inc"
#endif
