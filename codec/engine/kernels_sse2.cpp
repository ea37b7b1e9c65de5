// SSE2 kernels (every x86-64 CPU): the 16 virtual lanes in four 4-lane registers.
#if defined(__x86_64__)
#define LZ_W 4
#define LZ_KERNELS_FN kernels_sse2
#include "codec/engine/kernels.inc"
#endif
