// lorazip's reference quantizers (see gguf_quant.h for the choices and the error bound). Scales
// are rounded to f16 in the direction that keeps every value in range, and codes are computed
// against the rounded scales with the same float products that dequantize_row forms.
// Built with -ffp-contract=off (the engine's flags) so that the bytes are the same on every machine.
#include "model/gguf_quant.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace lorazip {
namespace {

using engine::WeightKind;

[[noreturn]] void refuse(const std::string& msg) { throw std::invalid_argument("quantize_row: " + msg); }

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

bool f16_finite(uint16_t h) { return (h & 0x7C00u) != 0x7C00u; }

// The next half above / below a finite half (on the number line; -0 and +0 count as one).
uint16_t f16_next_up(uint16_t h) {
  if (h & 0x8000u) return h == 0x8000u ? uint16_t{1} : static_cast<uint16_t>(h - 1);
  return static_cast<uint16_t>(h + 1);
}
uint16_t f16_next_down(uint16_t h) {
  if (h & 0x8000u) return static_cast<uint16_t>(h + 1);
  return h == 0 ? uint16_t{0x8001} : static_cast<uint16_t>(h - 1);
}

// The smallest half >= v / the largest half <= v (v finite); refused when that is infinite.
uint16_t f16_at_least(float v, const std::string& what) {
  uint16_t h = engine::f32_to_f16(v);
  if (f16_finite(h) && engine::f16_to_f32(h) < v) h = f16_next_up(h);
  if (!f16_finite(h)) refuse(what + " needs a scale of " + num(v) + ", beyond an f16's 65504 (values too large)");
  return h;
}
uint16_t f16_at_most(float v, const std::string& what) {
  uint16_t h = engine::f32_to_f16(v);
  if (f16_finite(h) && engine::f16_to_f32(h) > v) h = f16_next_down(h);
  if (!f16_finite(h)) refuse(what + " needs a min of " + num(v) + ", beyond an f16's -65504 (values too large)");
  return h;
}

// round(v) to nearest, ties to even, after clamping to [lo, hi].
int round_clamped(float v, float lo, float hi) { return static_cast<int>(std::nearbyint(std::min(std::max(v, lo), hi))); }

std::string block_name(WeightKind k, int64_t b) { return std::string(engine::kind_name(k)) + " block " + std::to_string(b); }

void quantize_q8_0(const float* x, uint8_t* out, int64_t b) {
  float amax = 0.0f;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  const uint16_t dh = f16_at_least(amax / 127.0f, block_name(WeightKind::Q8_0, b));
  const float d = engine::f16_to_f32(dh);
  put16(out, dh);
  for (int i = 0; i < 32; ++i)
    out[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(d > 0.0f ? round_clamped(x[i] / d, -127.0f, 127.0f) : 0));
}

void quantize_q4_0(const float* x, uint8_t* out, int64_t b) {
  int im = 0;
  for (int i = 1; i < 32; ++i)
    if (std::fabs(x[i]) > std::fabs(x[im])) im = i;
  const float m = x[im];
  uint16_t dh = f16_at_least(std::fabs(m) / 8.0f, block_name(WeightKind::Q4_0, b));
  if (m > 0.0f) dh |= 0x8000u;  // d = -m / 8: m itself maps to code 0
  const float d = engine::f16_to_f32(dh);
  put16(out, dh);
  int q[32];
  for (int i = 0; i < 32; ++i) q[i] = d != 0.0f ? round_clamped(x[i] / d, -8.0f, 7.0f) + 8 : 8;
  for (int j = 0; j < 16; ++j) out[2 + j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
}

void quantize_q4_1(const float* x, uint8_t* out, int64_t b) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < 32; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  const uint16_t mh = f16_at_most(lo, block_name(WeightKind::Q4_1, b));
  const float m = engine::f16_to_f32(mh);
  const uint16_t dh = f16_at_least((hi - m) / 15.0f, block_name(WeightKind::Q4_1, b));
  const float d = engine::f16_to_f32(dh);
  put16(out, dh);
  put16(out + 2, mh);
  int q[32];
  for (int i = 0; i < 32; ++i) q[i] = d > 0.0f ? round_clamped((x[i] - m) / d, 0.0f, 15.0f) : 0;
  for (int j = 0; j < 16; ++j) out[4 + j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
}

// Q4_K (top = 15) and Q5_K (top = 31): one super-block of 256 values.
void quantize_k(WeightKind kind, const float* x, uint8_t* out, int64_t b) {
  const bool five = kind == WeightKind::Q5_K;
  const float top = five ? 31.0f : 15.0f;
  const std::string what = block_name(kind, b);
  float mn[8], hi[8], max_mn = 0.0f;
  for (int j = 0; j < 8; ++j) {
    float lo = 0.0f, h = x[32 * j];
    for (int i = 32 * j; i < 32 * j + 32; ++i) lo = std::min(lo, x[i]), h = std::max(h, x[i]);
    mn[j] = -lo;  // >= 0: the lowest value the sub-block can hold is -dmin * lm <= 0
    hi[j] = h;
    max_mn = std::max(max_mn, mn[j]);
  }
  // Mins first (rounded up, so -m[j] <= lo), then the scales that reach hi from -m[j].
  const uint16_t dminh = f16_at_least(max_mn / 63.0f, what);
  const float dmin = engine::f16_to_f32(dminh);
  int lm[8], ls[8];
  float m[8], need[8], max_need = 0.0f;
  for (int j = 0; j < 8; ++j) {
    lm[j] = dmin > 0.0f ? static_cast<int>(std::min(63.0f, std::ceil(mn[j] / dmin))) : 0;
    m[j] = dmin * static_cast<float>(lm[j]);  // the dequantizer's ms
    need[j] = std::max(0.0f, (hi[j] + m[j]) / top);
    max_need = std::max(max_need, need[j]);
  }
  const uint16_t dh = f16_at_least(max_need / 63.0f, what);
  const float d = engine::f16_to_f32(dh);
  for (int j = 0; j < 8; ++j) ls[j] = d > 0.0f ? static_cast<int>(std::min(63.0f, std::ceil(need[j] / d))) : 0;

  put16(out, dh);
  put16(out + 2, dminh);
  uint8_t* sc = out + 4;  // 12 bytes: the layout that engine::k_scale_min reads
  for (int j = 0; j < 4; ++j) {
    sc[j] = static_cast<uint8_t>(ls[j] | ((ls[j + 4] >> 4) << 6));
    sc[j + 4] = static_cast<uint8_t>(lm[j] | ((lm[j + 4] >> 4) << 6));
    sc[j + 8] = static_cast<uint8_t>((ls[j + 4] & 15) | ((lm[j + 4] & 15) << 4));
  }
  int q[256];
  for (int j = 0; j < 8; ++j) {
    const float ds = d * static_cast<float>(ls[j]);  // the dequantizer's ds
    for (int i = 32 * j; i < 32 * j + 32; ++i) q[i] = ds > 0.0f ? round_clamped((x[i] + m[j]) / ds, 0.0f, top) : 0;
  }
  uint8_t* qh = out + 16;
  uint8_t* qs = out + (five ? 48 : 16);
  if (five) std::memset(qh, 0, 32);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const int lo = q[64 * c + l], up = q[64 * c + 32 + l];
      qs[32 * c + l] = static_cast<uint8_t>((lo & 15) | ((up & 15) << 4));
      if (five) qh[l] = static_cast<uint8_t>(qh[l] | (((lo >> 4) & 1) << (2 * c)) | (((up >> 4) & 1) << (2 * c + 1)));
    }
}

void quantize_q6_k(const float* x, uint8_t* out, int64_t b) {
  float scale[16], max_scale = 0.0f;
  for (int s = 0; s < 16; ++s) {
    int im = 16 * s;
    for (int i = 16 * s + 1; i < 16 * s + 16; ++i)
      if (std::fabs(x[i]) > std::fabs(x[im])) im = i;
    scale[s] = -x[im] / 32.0f;
    max_scale = std::max(max_scale, std::fabs(scale[s]));
  }
  const uint16_t dh = f16_at_least(max_scale / 127.0f, block_name(WeightKind::Q6_K, b));
  const float d = engine::f16_to_f32(dh);
  int q[256];
  int8_t* sc = reinterpret_cast<int8_t*>(out + 192);
  for (int s = 0; s < 16; ++s) {
    const float mag = d > 0.0f ? std::min(127.0f, std::ceil(std::fabs(scale[s]) / d)) : 0.0f;
    sc[s] = static_cast<int8_t>(scale[s] < 0.0f ? -mag : mag);
    const float ds = d * static_cast<float>(sc[s]);  // the dequantizer's ds
    for (int i = 16 * s; i < 16 * s + 16; ++i) q[i] = ds != 0.0f ? round_clamped(x[i] / ds, -32.0f, 31.0f) + 32 : 32;
  }
  uint8_t* ql = out;
  uint8_t* qh = out + 128;
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const int* v = q + 128 * h;
      ql[64 * h + l] = static_cast<uint8_t>((v[l] & 15) | ((v[64 + l] & 15) << 4));
      ql[64 * h + 32 + l] = static_cast<uint8_t>((v[32 + l] & 15) | ((v[96 + l] & 15) << 4));
      qh[32 * h + l] = static_cast<uint8_t>(((v[l] >> 4) & 3) | (((v[32 + l] >> 4) & 3) << 2) |
                                            (((v[64 + l] >> 4) & 3) << 4) | (((v[96 + l] >> 4) & 3) << 6));
    }
  put16(out + 208, dh);
}

}  // namespace

std::string quantize_row(WeightKind kind, const float* x, int64_t n) {
  const engine::KindTraits& t = engine::kind_traits(kind);
  if (n < 0 || n % t.block != 0)
    refuse(std::to_string(n) + " values are not whole " + t.name + " blocks of " + std::to_string(t.block));
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) refuse("value " + std::to_string(i) + " is " + num(x[i]) + "; only finite values can be stored");
  std::string bytes(static_cast<size_t>(engine::row_bytes(kind, n)), '\0');
  uint8_t* out = reinterpret_cast<uint8_t*>(&bytes[0]);
  switch (kind) {
    case WeightKind::F32:
      if (n) std::memcpy(out, x, static_cast<size_t>(n) * 4);
      return bytes;
    case WeightKind::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = engine::f32_to_f16(x[i]);
        if (!f16_finite(h)) refuse("value " + std::to_string(i) + " = " + num(x[i]) + " is outside F16's range (|x| <= 65504)");
        put16(out + 2 * i, h);
      }
      return bytes;
    case WeightKind::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = engine::f32_to_bf16(x[i]);
        if ((h & 0x7F80u) == 0x7F80u) refuse("value " + std::to_string(i) + " = " + num(x[i]) + " rounds to infinity in BF16");
        put16(out + 2 * i, h);
      }
      return bytes;
    default:
      break;
  }
  const int64_t blocks = n / t.block;
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * t.block;
    uint8_t* ob = out + b * t.block_bytes;
    switch (kind) {
      case WeightKind::Q8_0: quantize_q8_0(xb, ob, b); break;
      case WeightKind::Q4_0: quantize_q4_0(xb, ob, b); break;
      case WeightKind::Q4_1: quantize_q4_1(xb, ob, b); break;
      case WeightKind::Q4_K:
      case WeightKind::Q5_K: quantize_k(kind, xb, ob, b); break;
      case WeightKind::Q6_K: quantize_q6_k(xb, ob, b); break;
      default: break;
    }
  }
  return bytes;
}

double quantize_error_bound(WeightKind kind, double amax) {
  const double u24 = std::ldexp(1.0, -24);
  switch (kind) {
    case WeightKind::F32: return 0.0;
    case WeightKind::F16: return amax * std::ldexp(1.0, -11) + std::ldexp(1.0, -25);
    case WeightKind::BF16: return amax * std::ldexp(1.0, -8) + std::ldexp(1.0, -133);
    case WeightKind::Q8_0: return amax / 250.0 + u24;
    case WeightKind::Q4_0: return amax * 0.1252 + 2 * u24;
    case WeightKind::Q4_1: return amax * 0.0670 + 2 * u24;
    case WeightKind::Q4_K: return amax * 0.0685 + 4 * u24;
    case WeightKind::Q5_K: return amax * 0.0332 + 4 * u24;
    case WeightKind::Q6_K: return amax * 0.0316 + 4 * u24;
  }
  return 0.0;
}

void add_quantized_tensor(GgufWriter& w, const std::string& name, const std::vector<int64_t>& ne, WeightKind kind,
                          const float* values) {
  const engine::KindTraits& t = engine::kind_traits(kind);
  const std::string tn = "GgufWriter: tensor '" + name + "' (" + t.name + ")";
  if (ne.empty()) throw std::invalid_argument(tn + " has no dimensions");
  int64_t numel = 1;
  for (int64_t d : ne) {
    if (d < 0) throw std::invalid_argument(tn + " has a negative dimension " + std::to_string(d));
    if (d != 0 && numel > std::numeric_limits<int64_t>::max() / d) throw std::invalid_argument(tn + ": element count overflows");
    numel *= d;
  }
  const int64_t cols = ne[0], rows = cols ? numel / cols : 0;
  if (cols % t.block != 0)
    throw std::invalid_argument(tn + ": row length ne[0] = " + std::to_string(cols) + " is not a multiple of " + t.name +
                                "'s block size " + std::to_string(t.block));
  std::string bytes;
  bytes.reserve(static_cast<size_t>(engine::row_bytes(kind, cols) * static_cast<uint64_t>(rows)));
  for (int64_t r = 0; r < rows; ++r) {
    try {
      bytes += quantize_row(kind, values + r * cols, cols);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(tn + ", row " + std::to_string(r) + ": " + e.what());
    }
  }
  w.add_tensor(name, ne, t.ggml_type, std::move(bytes));
}

}  // namespace lorazip
