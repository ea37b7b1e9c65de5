// Packing stored matrices into the engine's panels (layouts in weights.h) and reading rows back.
#include "codec/engine/weights.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include "codec/engine/kernels.h"

namespace lorazip::engine {

AlignedBytes::AlignedBytes(size_t n) : n_(n) {
  if (n == 0) return;
  const size_t rounded = (n + 63) / 64 * 64;
  p_ = static_cast<uint8_t*>(std::aligned_alloc(64, rounded));
  if (!p_) throw std::bad_alloc();
  std::memset(p_, 0, rounded);
}
AlignedBytes::AlignedBytes(AlignedBytes&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
AlignedBytes& AlignedBytes::operator=(AlignedBytes&& o) noexcept {
  if (this != &o) {
    std::free(p_);
    p_ = o.p_, n_ = o.n_;
    o.p_ = nullptr, o.n_ = 0;
  }
  return *this;
}
AlignedBytes::~AlignedBytes() { std::free(p_); }

namespace {

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

// Per block record sizes (must match kernels.inc's layout_of).
struct Layout {
  int head, rec, nib, blocks;
};
Layout layout(WeightKind k) {
  switch (k) {
    case WeightKind::Q8_0: return {0, 544, 32, 1};
    case WeightKind::Q4_0: return {0, 288, 32, 1};
    case WeightKind::Q4_1: return {0, 320, 64, 1};
    case WeightKind::Q4_K: return {64, 288, 32, 8};
    case WeightKind::Q5_K: return {64, 352, 32, 8};
    default: return {32, 416, 32, 8};  // Q6_K
  }
}

// Writes the codes of one block of 32 columns for 16 rows (codes[j][c]) in the record's layout.
void put_codes(WeightKind kind, const int16_t codes[16][32], uint8_t* out) {
  if (kind == WeightKind::Q8_0) {
    for (int g = 0; g < 8; ++g)
      for (int j = 0; j < 16; ++j)
        for (int i = 0; i < 4; ++i) out[64 * g + 4 * j + i] = static_cast<uint8_t>(codes[j][4 * g + i]);
    return;
  }
  for (int v = 0; v < 4; ++v)
    for (int j = 0; j < 16; ++j)
      for (int i = 0; i < 4; ++i)
        out[64 * v + 4 * j + i] =
            static_cast<uint8_t>((codes[j][4 * v + i] & 15) | ((codes[j][16 + 4 * v + i] & 15) << 4));
  if (kind == WeightKind::Q5_K) {
    uint8_t* hb = out + 256;
    for (int g = 0; g < 8; ++g)
      for (int j = 0; j < 16; ++j)
        for (int i = 0; i < 4; ++i)
          if ((codes[j][4 * g + i] >> 4) & 1) hb[8 * g + (4 * j + i) / 8] |= static_cast<uint8_t>(1u << ((4 * j + i) % 8));
  }
  if (kind == WeightKind::Q6_K) {
    uint8_t* h2 = out + 256;
    for (int u = 0; u < 2; ++u)
      for (int t = 0; t < 4; ++t)
        for (int j = 0; j < 16; ++j)
          for (int i = 0; i < 4; ++i)
            h2[64 * u + 4 * j + i] |= static_cast<uint8_t>(((codes[j][4 * (4 * u + t) + i] >> 4) & 3) << (2 * t));
  }
}

// The code of row j, column c of a block record (inverse of put_codes).
int code_at(WeightKind kind, const uint8_t* codes, int j, int c) {
  const int g = c / 4, i = c % 4;
  if (kind == WeightKind::Q8_0) return static_cast<int8_t>(codes[64 * g + 4 * j + i]);
  const uint8_t byte = codes[64 * (g % 4) + 4 * j + i];
  int v = g < 4 ? (byte & 15) : (byte >> 4);
  if (kind == WeightKind::Q5_K) v |= ((codes[256 + 8 * g + (4 * j + i) / 8] >> ((4 * j + i) % 8)) & 1) << 4;
  if (kind == WeightKind::Q6_K) v |= ((codes[256 + 64 * (g / 4) + 4 * j + i] >> (2 * (g % 4))) & 3) << 4;
  return v;
}

}  // namespace

int64_t stored_row(int64_t r, int64_t rows, int64_t permute_heads) {
  if (permute_heads <= 0) return r;
  const int64_t hd = rows / permute_heads, half = hd / 2;
  const int64_t h = r / hd, w = r % hd, t = w / half, i = w % half;
  return h * hd + 2 * i + t;
}

int64_t panel_bytes(WeightKind kind, int64_t K) {
  switch (kind) {
    case WeightKind::F32: return K * 16 * 4;
    case WeightKind::F16:
    case WeightKind::BF16: return K * 16 * 2;
    default: {
      const Layout L = layout(kind);
      if (L.blocks == 1) return (K / 32) * L.rec;
      return (K / 256) * (L.head + L.blocks * L.rec);
    }
  }
}

namespace {

// What every packing needs of a stored matrix: rows, whole blocks of columns, a row permutation
// that splits the rows into heads of even size.
void check_packable(const StoredMatrix& s, const std::string& what) {
  const KindTraits& t = kind_traits(s.kind);
  if (s.rows < 1 || s.cols < 1 || s.cols % t.block != 0)
    throw std::invalid_argument(what + ": " + std::to_string(s.cols) + " columns are not whole " + t.name + " blocks of " +
                                std::to_string(t.block));
  if (s.permute_heads > 0 && (s.rows % s.permute_heads != 0 || (s.rows / s.permute_heads) % 2 != 0))
    throw std::invalid_argument(what + ": " + std::to_string(s.rows) + " rows do not split into " +
                                std::to_string(s.permute_heads) + " heads of even size");
}

}  // namespace

PackedMatrix pack_matrix(const StoredMatrix& s, const std::string& what) {
  check_packable(s, what);
  const KindTraits& t = kind_traits(s.kind);
  PackedMatrix m;
  m.n = s.rows;
  m.k = s.cols;
  m.kind = s.kind;
  m.panel_bytes = panel_bytes(s.kind, s.cols);
  m.data = AlignedBytes(static_cast<size_t>(m.panels() * m.panel_bytes));
  const uint64_t rb = row_bytes(s.kind, s.cols);
  const int64_t K = s.cols;
  if (!t.quantized) {
    const int es = s.kind == WeightKind::F32 ? 4 : 2;
    for (int64_t n = 0; n < s.rows; ++n) {
      const uint8_t* src = s.data + static_cast<uint64_t>(stored_row(n, s.rows, s.permute_heads)) * rb;
      uint8_t* dst = m.data.data() + (n / 16) * m.panel_bytes + (n % 16) * es;
      for (int64_t k = 0; k < K; ++k) std::memcpy(dst + k * 16 * es, src + k * es, static_cast<size_t>(es));
    }
    return m;
  }
  const Layout L = layout(s.kind);
  const int64_t nsb = K / t.block;  // stored blocks per row (K-quants: super-blocks)
  static thread_local int16_t codes_sb[16][256];
  int16_t codes[16][32];
  for (int64_t p = 0; p < m.panels(); ++p) {
    uint8_t* panel = m.data.data() + p * m.panel_bytes;
    const uint8_t* rowp[16] = {};
    for (int j = 0; j < 16; ++j) {
      const int64_t n = 16 * p + j;
      if (n < s.rows) rowp[j] = s.data + static_cast<uint64_t>(stored_row(n, s.rows, s.permute_heads)) * rb;
    }
    for (int64_t sb = 0; sb < nsb; ++sb) {
      uint8_t* rec0 = L.blocks == 1 ? panel + sb * L.rec : panel + sb * (L.head + L.blocks * L.rec);
      std::memset(codes_sb, 0, sizeof codes_sb);
      for (int j = 0; j < 16; ++j) {
        if (!rowp[j]) continue;
        const uint8_t* blk = rowp[j] + sb * t.block_bytes;
        block_codes(s.kind, blk, codes_sb[j]);
        switch (s.kind) {
          case WeightKind::Q8_0:
          case WeightKind::Q4_0: put16(rec0 + 2 * j, le16(blk)); break;
          case WeightKind::Q4_1:
            put16(rec0 + 2 * j, le16(blk));
            put16(rec0 + 32 + 2 * j, le16(blk + 2));
            break;
          case WeightKind::Q4_K:
          case WeightKind::Q5_K:
            put16(rec0 + 2 * j, le16(blk));
            put16(rec0 + 32 + 2 * j, le16(blk + 2));
            for (int sub = 0; sub < 8; ++sub) {
              uint8_t sc, mn;
              k_scale_min(blk + 4, sub, &sc, &mn);
              uint8_t* rec = rec0 + L.head + sub * L.rec;
              rec[j] = sc;
              rec[16 + j] = mn;
            }
            break;
          case WeightKind::Q6_K:
            put16(rec0 + 2 * j, le16(blk + 208));
            for (int sub = 0; sub < 8; ++sub) {
              uint8_t* rec = rec0 + L.head + sub * L.rec;
              rec[j] = blk[192 + 2 * sub];
              rec[16 + j] = blk[192 + 2 * sub + 1];
            }
            break;
          default: break;
        }
      }
      for (int sub = 0; sub < L.blocks; ++sub) {
        for (int j = 0; j < 16; ++j) std::memcpy(codes[j], codes_sb[j] + 32 * sub, sizeof codes[j]);
        uint8_t* rec = rec0 + L.head + sub * L.rec;
        put_codes(s.kind, codes, rec + L.nib);
      }
    }
  }
  return m;
}

PackedMatrix pack_floats(const float* w, int64_t N, int64_t K) {
  StoredMatrix s;
  s.kind = WeightKind::F32;
  s.rows = N;
  s.cols = K;
  s.data = reinterpret_cast<const uint8_t*>(w);
  return pack_matrix(s, "weights");
}

PackedMatrix pack_as_f32(const StoredMatrix& s, const std::string& what) {
  if (s.kind == WeightKind::F32) return pack_matrix(s, what);
  if (s.kind != WeightKind::F16 && s.kind != WeightKind::BF16)
    throw std::invalid_argument(what + ": " + kind_name(s.kind) + " cannot be packed as float32 (only F32, F16 and BF16)");
  check_packable(s, what);
  PackedMatrix m;
  m.n = s.rows;
  m.k = s.cols;
  m.kind = WeightKind::F32;
  m.panel_bytes = panel_bytes(WeightKind::F32, s.cols);
  m.data = AlignedBytes(static_cast<size_t>(m.panels() * m.panel_bytes));
  const uint64_t rb = row_bytes(s.kind, s.cols);
  const bool half = s.kind == WeightKind::F16;
  for (int64_t n = 0; n < s.rows; ++n) {
    const uint8_t* src = s.data + static_cast<uint64_t>(stored_row(n, s.rows, s.permute_heads)) * rb;
    uint8_t* dst = m.data.data() + (n / 16) * m.panel_bytes + (n % 16) * 4;
    for (int64_t k = 0; k < s.cols; ++k) {
      const uint16_t v = le16(src + 2 * k);
      const float f = half ? f16_to_f32(v) : bf16_to_f32(v);
      std::memcpy(dst + k * 16 * 4, &f, 4);
    }
  }
  return m;
}

void unpack_row(const PackedMatrix& m, int64_t n, float* out) {
  const int64_t p = n / 16;
  const int j = static_cast<int>(n % 16);
  const uint8_t* panel = m.panel(p);
  const int64_t K = m.k;
  switch (m.kind) {
    case WeightKind::F32:
      for (int64_t k = 0; k < K; ++k) std::memcpy(out + k, panel + (k * 16 + j) * 4, 4);
      return;
    case WeightKind::F16:
      for (int64_t k = 0; k < K; ++k) out[k] = f16_to_f32(le16(panel + (k * 16 + j) * 2));
      return;
    case WeightKind::BF16:
      for (int64_t k = 0; k < K; ++k) out[k] = bf16_to_f32(le16(panel + (k * 16 + j) * 2));
      return;
    default: break;
  }
  const Layout L = layout(m.kind);
  for (int64_t b = 0; b < K / 32; ++b) {
    const uint8_t* head;
    const uint8_t* rec;
    if (L.blocks == 1) {
      head = rec = panel + b * L.rec;
    } else {
      head = panel + (b / 8) * (L.head + 8 * L.rec);
      rec = head + L.head + (b % 8) * L.rec;
    }
    const uint8_t* codes = rec + L.nib;
    float* y = out + 32 * b;
    const float d = f16_to_f32(le16(head + 2 * j));
    switch (m.kind) {
      case WeightKind::Q8_0:
        for (int c = 0; c < 32; ++c) y[c] = d * static_cast<float>(code_at(m.kind, codes, j, c));
        break;
      case WeightKind::Q4_0:
        for (int c = 0; c < 32; ++c) y[c] = d * static_cast<float>(code_at(m.kind, codes, j, c) - 8);
        break;
      case WeightKind::Q4_1: {
        const float mm = f16_to_f32(le16(head + 32 + 2 * j));
        for (int c = 0; c < 32; ++c) y[c] = d * static_cast<float>(code_at(m.kind, codes, j, c)) + mm;
        break;
      }
      case WeightKind::Q4_K:
      case WeightKind::Q5_K: {
        const float dmin = f16_to_f32(le16(head + 32 + 2 * j));
        const float ds = d * static_cast<float>(rec[j]), ms = dmin * static_cast<float>(rec[16 + j]);
        for (int c = 0; c < 32; ++c) y[c] = ds * static_cast<float>(code_at(m.kind, codes, j, c)) - ms;
        break;
      }
      case WeightKind::Q6_K:
        for (int h = 0; h < 2; ++h) {
          const float ds = d * static_cast<float>(static_cast<int8_t>(rec[16 * h + j]));
          for (int c = 16 * h; c < 16 * h + 16; ++c) y[c] = ds * static_cast<float>(code_at(m.kind, codes, j, c) - 32);
        }
        break;
      default: break;
    }
  }
}

}  // namespace lorazip::engine
