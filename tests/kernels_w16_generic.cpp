// The AVX-512 path's kernels (16 lanes a register) compiled without an AVX-512 target: GCC lowers
// the 16-lane vectors to whatever this file's -march has. engine_hash runs the model on them so
// that the 16-lane tiling is checked on every CPU, not only on those with AVX-512.
#define LZ_W 16
#define LZ_KERNELS_FN kernels_w16_generic
#include "codec/engine/kernels.inc"
