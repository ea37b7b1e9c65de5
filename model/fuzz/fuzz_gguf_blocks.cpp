// libFuzzer target for the weight kinds' bytes: the first 4 bytes pick a kind, a matrix shape and a
// q/k permutation, the rest are the matrix's stored bytes and, separately, a GGUF file.
//   - engine::dequantize_row over the whole matrix, engine::block_codes on every block (codes in
//     the documented ranges), engine::pack_matrix (refusing exactly the shapes it documents) and
//     unpack_row, which must give dequantize_row's floats for every row;
//   - the rest read as float32 and quantized with quantize_row, which either refuses (non-finite or
//     too large) or dequantizes within quantize_error_bound;
//   - GgufFile::parse of the rest; every tensor of an engine kind dequantized, and packed and
//     unpacked to the same floats.
// Every buffer handed to the code under test is a heap copy of exactly its size, so ASan sees any
// read past it. A crash, a sanitizer report, a trap or an unexpected exception is a finding.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "codec/engine/blocks.h"
#include "codec/engine/weights.h"
#include "model/gguf.h"
#include "model/gguf_quant.h"

namespace {

using lorazip::engine::WeightKind;
namespace engine = lorazip::engine;

constexpr int64_t kMaxValues = int64_t{1} << 16;  // per matrix or tensor, to keep each run short

bool same_float(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::memcmp(&a, &b, 4) == 0;
}

void check_codes(WeightKind k, const int16_t* code, int n) {
  int lo = 0, hi = 15;
  if (k == WeightKind::Q8_0) lo = -128, hi = 127;
  if (k == WeightKind::Q5_K) hi = 31;
  if (k == WeightKind::Q6_K) hi = 63;
  for (int i = 0; i < n; ++i)
    if (code[i] < lo || code[i] > hi) __builtin_trap();
}

// Packs `rows` x `cols` stored values of kind k (bytes exactly row_bytes * rows) and checks every
// row against dequantize_row of its stored row. `expect_refusal`: pack_matrix must throw.
void pack_and_compare(WeightKind k, const uint8_t* bytes, int64_t rows, int64_t cols, int64_t heads, bool expect_refusal) {
  engine::StoredMatrix s;
  s.kind = k;
  s.rows = rows;
  s.cols = cols;
  s.data = bytes;
  s.permute_heads = heads;
  engine::PackedMatrix m;
  try {
    m = engine::pack_matrix(s, "fuzz");
  } catch (const std::invalid_argument&) {
    if (!expect_refusal) __builtin_trap();
    return;
  }
  if (expect_refusal) __builtin_trap();
  const uint64_t rb = engine::row_bytes(k, cols);
  std::vector<float> want(static_cast<size_t>(cols)), got(static_cast<size_t>(cols));
  for (int64_t n = 0; n < rows; ++n) {
    const int64_t r = engine::stored_row(n, rows, heads);
    if (r < 0 || r >= rows) __builtin_trap();
    engine::dequantize_row(k, bytes + static_cast<uint64_t>(r) * rb, want.data(), cols);
    engine::unpack_row(m, n, got.data());
    for (int64_t c = 0; c < cols; ++c)
      if (!same_float(want[c], got[c])) __builtin_trap();
  }
}

void fuzz_matrix(const uint8_t* sel, const uint8_t* payload, size_t size) {
  const WeightKind k = static_cast<WeightKind>(sel[0] % engine::kWeightKinds);
  const engine::KindTraits& t = engine::kind_traits(k);
  const int64_t block_cols = t.block == 1 ? 1 + sel[2] % 64 : int64_t{t.block} * (1 + sel[2] % 4);
  const int64_t rows_wanted = 1 + sel[1] % 40;
  const bool bad_cols = (sel[3] & 1) && t.block > 1;  // a row length that is not whole blocks
  const int64_t heads = (sel[3] >> 1) % 5;            // 0: no permutation
  const uint64_t rb = engine::row_bytes(k, block_cols);
  const int64_t rows = std::min<int64_t>(rows_wanted, static_cast<int64_t>(size / rb));

  // Every whole block in the payload, as one run.
  const int64_t blocks = static_cast<int64_t>(size / t.block_bytes);
  if (blocks > 0 && blocks * t.block <= kMaxValues) {
    std::vector<uint8_t> buf(payload, payload + blocks * t.block_bytes);
    std::vector<float> out(static_cast<size_t>(blocks * t.block));
    engine::dequantize_row(k, buf.data(), out.data(), blocks * t.block);
    if (t.quantized) {
      std::vector<int16_t> code(t.block);
      for (int64_t b = 0; b < blocks; ++b) {
        std::vector<uint8_t> one(buf.begin() + b * t.block_bytes, buf.begin() + (b + 1) * t.block_bytes);
        engine::block_codes(k, one.data(), code.data());
        check_codes(k, code.data(), static_cast<int>(t.block));
      }
    }
  }

  if (rows >= 1) {
    std::vector<uint8_t> buf(payload, payload + rows * rb);
    const bool bad_heads = heads > 0 && (rows % heads != 0 || (rows / heads) % 2 != 0);
    if (bad_cols) {
      // Declare one column more (or fewer) than the bytes hold: refused before anything is read.
      pack_and_compare(k, buf.data(), rows, block_cols + (sel[3] & 2 ? 1 : -1), heads, true);
    } else {
      pack_and_compare(k, buf.data(), rows, block_cols, heads, bad_heads);
    }
  }

  // The payload as float32 values through the quantizer: refused, or within the bound.
  const int64_t nf = std::min<int64_t>(static_cast<int64_t>(size / 4) / t.block * t.block, kMaxValues);
  if (nf > 0) {
    std::vector<float> x(static_cast<size_t>(nf));
    std::memcpy(x.data(), payload, static_cast<size_t>(nf) * 4);
    std::string q;
    try {
      q = lorazip::quantize_row(k, x.data(), nf);
    } catch (const std::invalid_argument&) {
      return;
    }
    if (q.size() != engine::row_bytes(k, nf)) __builtin_trap();
    std::vector<uint8_t> qb(q.begin(), q.end());
    std::vector<float> y(static_cast<size_t>(nf));
    engine::dequantize_row(k, qb.data(), y.data(), nf);
    const int64_t group = t.block == 1 ? 1 : t.block;
    for (int64_t b0 = 0; b0 < nf; b0 += group) {
      double amax = 0.0;
      for (int64_t i = b0; i < b0 + group; ++i) amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
      const double bound = lorazip::quantize_error_bound(k, amax);
      for (int64_t i = b0; i < b0 + group; ++i)
        if (!(std::fabs(static_cast<double>(y[i]) - x[i]) <= bound)) __builtin_trap();
    }
  }
}

void fuzz_gguf(const uint8_t* payload, size_t size) {
  lorazip::GgufFile f;
  try {
    f = lorazip::GgufFile::parse(std::string(reinterpret_cast<const char*>(payload), size), "fuzz-input");
  } catch (const std::runtime_error&) {
    return;
  }
  for (const auto& t : f.tensors()) {
    WeightKind k;
    if (!engine::kind_from_ggml(t.type, &k) || t.numel() > kMaxValues) continue;
    const std::vector<float> v = f.dequantize(t);
    if (t.ne[0] < 1 || t.numel() == 0) continue;
    // The tensor as a matrix of ne[0] columns, packed from a copy of exactly its bytes.
    const std::string_view b = f.tensor_bytes(t);
    std::vector<uint8_t> buf(b.begin(), b.end());
    const int64_t cols = t.ne[0], rows = t.numel() / cols;
    pack_and_compare(k, buf.data(), rows, cols, 0, false);
    // And the reader's floats are dequantize_row's.
    std::vector<float> want(static_cast<size_t>(t.numel()));
    engine::dequantize_row(k, buf.data(), want.data(), t.numel());
    for (size_t i = 0; i < want.size(); ++i)
      if (!same_float(want[i], v[i])) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  fuzz_matrix(data, data + 4, size - 4);
  fuzz_gguf(data + 4, size - 4);
  return 0;
}
