// Weight matrices as the engine computes with them: packed into panels of 16 rows, in the kind the
// model file stores them (blocks.h), so a quantized GGUF stays quantized in memory.
//
// Panel p holds rows 16p .. 16p + 15 of W [N, K] (rows past N are zero). Per kind:
//   F32, F16, BF16: [K][16] values: column k of the 16 rows, one SIMD load.
//   Q8_0: per block of 32 columns, 544 bytes: d of the 16 rows (f16 [16]), then the codes as
//         groups g = 0..7 of 4 columns, 64 bytes a group, byte 4j + i = row j, column 32b + 4g + i.
//   Q4_0: 288 bytes: d [16], then 256 bytes of nibbles: byte 64v + 4j + i holds group v (< 4) in
//         its low and group v + 4 in its high nibble.
//   Q4_1: 320 bytes: d [16], m [16], nibbles as Q4_0.
//   Q4_K: per super-block of 256 columns: d [16], dmin [16] (f16), then 8 block records of 288
//         bytes: scales [16], mins [16] (6-bit values as bytes), nibbles as Q4_0.
//   Q5_K: d [16], dmin [16], 8 records of 352 bytes: scales, mins, nibbles, then for each group g
//         a 64-bit word whose bit 4j + i is bit 4 of the code.
//   Q6_K: d [16], 8 records of 416 bytes: scales of columns 0..15 [16] and 16..31 [16] (int8),
//         nibbles (the codes' low 4 bits) as Q4_0, then two 64-byte vectors of 2-bit fields:
//         vector u, byte 4j + i, bits 2t..2t+1 = bits 4..5 of the code of group 4u + t.
// Codes are as blocks.h unpacks them (Q8_0 signed, the others unsigned before their offsets).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codec/engine/blocks.h"

namespace lorazip::engine {

// A byte buffer aligned to 64 bytes.
class AlignedBytes {
 public:
  AlignedBytes() = default;
  explicit AlignedBytes(size_t n);
  AlignedBytes(AlignedBytes&&) noexcept;
  AlignedBytes& operator=(AlignedBytes&&) noexcept;
  AlignedBytes(const AlignedBytes&) = delete;
  AlignedBytes& operator=(const AlignedBytes&) = delete;
  ~AlignedBytes();
  uint8_t* data() { return p_; }
  const uint8_t* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  uint8_t* p_ = nullptr;
  size_t n_ = 0;
};

struct PackedMatrix {
  int64_t n = 0, k = 0;
  WeightKind kind = WeightKind::F32;
  int64_t panel_bytes = 0;  // bytes per panel
  AlignedBytes data;        // ceil(n / 16) panels
  std::vector<float> bias;  // [N] or empty
  int64_t panels() const { return (n + 15) / 16; }
  const uint8_t* panel(int64_t p) const { return data.data() + p * panel_bytes; }
};

// A matrix as a model file stores it: `rows` rows of `cols` values of `kind`, row r at
// data + r * row_bytes(kind, cols). With permute_heads > 0 the rows are in llama.cpp's rotary order
// over that many heads (GGUF's attn_q / attn_k); packing restores Hugging Face's order:
//   stored row h*hd + 2i + t = Hugging Face row h*hd + t*hd/2 + i  (t in {0, 1}, i < hd/2).
struct StoredMatrix {
  WeightKind kind = WeightKind::F32;
  int64_t rows = 0, cols = 0;
  const uint8_t* data = nullptr;
  int64_t permute_heads = 0;
};

// Packs a stored matrix in its own kind. std::invalid_argument naming `what` when cols is not a
// whole number of the kind's blocks (Q*_K: 256, other quantized kinds: 32) or the permutation does
// not divide the rows into heads of even size.
PackedMatrix pack_matrix(const StoredMatrix& m, const std::string& what);
// Packs float32 values W [N, K] row-major (kind F32).
PackedMatrix pack_floats(const float* w, int64_t N, int64_t K);
// Packs a stored matrix of a float kind as float32 panels (kind F32), whatever its stored kind:
// F32 values copied bit for bit, F16 and BF16 values widened exactly (f16_to_f32, bf16_to_f32).
// The bytes are read with memcpy (any alignment). std::invalid_argument naming `what` for a
// block-quantized kind, and as pack_matrix.
PackedMatrix pack_as_f32(const StoredMatrix& m, const std::string& what);

// Row n of a packed matrix, dequantized with blocks.h's formulas (float kinds: exactly): the same
// floats as dequantize_row on the stored row.
void unpack_row(const PackedMatrix& m, int64_t n, float* out);

// The stored row index of Hugging Face row `r` under permute_heads (identity when 0).
int64_t stored_row(int64_t r, int64_t rows, int64_t permute_heads);

}  // namespace lorazip::engine
