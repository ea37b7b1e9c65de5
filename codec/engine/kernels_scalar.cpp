// The portable scalar kernels: the 16 virtual lanes as 16 plain floats, for any CPU and any
// compiler. Same bits as every SIMD path (kernels.inc).
#define LZ_W 1
#define LZ_KERNELS_FN kernels_scalar
#include "codec/engine/kernels.inc"
