// lorazip's quantizers (model/gguf_quant.h), torch-free: for each weight kind, the exact bytes of a
// block whose codes and scales were worked out by hand from blocks.h's layout (assembled by
// tests/block_layout.h, not by the code under test); the documented error bound on seeded random
// and awkward rows; refusals; and GGUF files written with them reading back through
// GgufFile::parse as dequantize_row gives. Also the reader's refusals of quantized tensors whose
// row length, type or data do not fit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "codec/engine/blocks.h"
#include "model/gguf.h"
#include "model/gguf_quant.h"
#include "tests/block_layout.h"

using namespace lorazip;
using engine::WeightKind;

namespace {

const WeightKind kAllKinds[] = {WeightKind::F32,  WeightKind::F16,  WeightKind::BF16, WeightKind::Q8_0, WeightKind::Q4_0,
                                WeightKind::Q4_1, WeightKind::Q4_K, WeightKind::Q5_K, WeightKind::Q6_K};

// splitmix64: the same numbers on every machine (std:: distributions are not).
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * 0x1p-24f * 2.0f - 1.0f; }  // [-1, 1)
};

std::vector<float> dequant(WeightKind k, const std::string& bytes, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  engine::dequantize_row(k, reinterpret_cast<const uint8_t*>(bytes.data()), out.data(), n);
  return out;
}

std::string error_of(WeightKind k, const std::vector<float>& x) {
  try {
    quantize_row(k, x.data(), static_cast<int64_t>(x.size()));
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "<accepted>";
}

bool has(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

// A perturbation of a fraction of a step that must round back to the code: +-0.3 steps,
// alternating with the index.
float nudge(int i, float step) { return (i % 2 ? 0.3f : -0.3f) * step; }

}  // namespace

// ---- hand-made blocks: inputs chosen so that every scale is an f16 and every code is known ----

TEST(GgufQuantBytes, Q8_0) {
  // d = 31.75 / 127 = 0.25 (f16 0x3400); codes 8j - 127 (value 0 is the largest |x|).
  std::vector<float> x(32);
  std::vector<int> q(32);
  for (int j = 0; j < 32; ++j) {
    q[j] = 8 * j - 127;
    x[j] = 0.25f * q[j] + (j ? nudge(j, 0.25f) : 0.0f);
  }
  EXPECT_EQ(quantize_row(WeightKind::Q8_0, x.data(), 32), block_layout::q8_0(0x3400, q));
}

TEST(GgufQuantBytes, Q4_0) {
  // The largest |x| is x0 = 4 > 0, so d = -4 / 8 = -0.5 (0xB800) and x0 gets code 0; x = -0.5 (c - 8).
  // x31 = -4 lies on the other side at +8 steps and is clamped to code 15.
  std::vector<float> x(32);
  std::vector<int> q(32);
  for (int j = 0; j < 32; ++j) {
    q[j] = j == 0 ? 0 : j == 31 ? 15 : (5 * j) % 16;
    x[j] = -0.5f * (q[j] - 8);
    if (j > 0 && j < 31 && q[j] > 0) x[j] += nudge(j, 0.5f);
  }
  x[31] = -4.0f;
  EXPECT_EQ(quantize_row(WeightKind::Q4_0, x.data(), 32), block_layout::q4_0(0xB800, q));
}

TEST(GgufQuantBytes, Q4_1) {
  // min -1 (0xBC00), max 2.75: d = 3.75 / 15 = 0.25 (0x3400); x = 0.25 c - 1.
  std::vector<float> x(32);
  std::vector<int> q(32);
  for (int j = 0; j < 32; ++j) {
    q[j] = j == 0 ? 0 : j == 1 ? 15 : (3 * j) % 16;
    x[j] = 0.25f * q[j] - 1.0f;
    if (q[j] > 0 && q[j] < 15) x[j] += nudge(j, 0.25f);
  }
  EXPECT_EQ(quantize_row(WeightKind::Q4_1, x.data(), 32), block_layout::q4_1(0x3400, 0xBC00, q));
}

namespace {

// A Q4_K / Q5_K super-block from chosen 6-bit scales and mins: with d and dmin as given, sub-block j
// holds x = d ls_j c - dmin lm_j for codes c (0 and top included, so its min and max are exact),
// nudged off the grid except at the ends.
std::vector<float> k_values(float d, float dmin, int top, const std::vector<int>& ls, const std::vector<int>& lm,
                            std::vector<int>& q) {
  std::vector<float> x(256);
  q.assign(256, 0);
  for (int i = 0; i < 256; ++i) {
    const int j = i / 32, l = i % 32;
    q[i] = l == 0 ? 0 : l == 1 ? top : (7 * l + j) % (top + 1);
    const float ds = d * ls[j], m = dmin * lm[j];
    x[i] = ds * q[i] - m;
    if (q[i] > 0 && q[i] < top) x[i] += nudge(i, ds);
  }
  return x;
}

}  // namespace

TEST(GgufQuantBytes, Q4_K) {
  // The largest min is 63 dmin and the largest range 15 * 63 d, so the quantizer picks exactly
  // dmin = 0.125 (0x3000) and d = 0.0625 (0x2C00), and then these scales and mins.
  const std::vector<int> ls = {63, 10, 1, 40, 50, 63, 33, 20}, lm = {0, 63, 5, 17, 63, 1, 32, 9};
  std::vector<int> q;
  const std::vector<float> x = k_values(0.0625f, 0.125f, 15, ls, lm, q);
  EXPECT_EQ(quantize_row(WeightKind::Q4_K, x.data(), 256), block_layout::q4_k(0x2C00, 0x3000, ls, lm, q));
}

TEST(GgufQuantBytes, Q5_K) {
  // d = 0.03125 (0x2800), dmin = 0.125 (0x3000); codes up to 31 set qh's bits.
  const std::vector<int> ls = {7, 63, 18, 1, 63, 2, 45, 30}, lm = {63, 0, 16, 31, 48, 63, 5, 0};
  std::vector<int> q;
  const std::vector<float> x = k_values(0.03125f, 0.125f, 31, ls, lm, q);
  EXPECT_EQ(quantize_row(WeightKind::Q5_K, x.data(), 256), block_layout::q5_k(0x2800, 0x3000, ls, lm, q));
}

TEST(GgufQuantBytes, Q6_K) {
  // d = 2^-7 (0x2000). Sub-block s: value 0 is the largest |x| at -32 ds (ds = d sc_s), so the
  // scale is sc_s; value 15 sits at +32 ds on the other side and is clamped to code 63.
  const std::vector<int> sc = {127, -1, 50, -127, 3, 64, -64, 100, -99, 2, -2, 17, -33, 127, 1, -90};
  std::vector<float> x(256);
  std::vector<int> q(256);
  for (int i = 0; i < 256; ++i) {
    const int s = i / 16, l = i % 16;
    const float ds = 0x1p-7f * sc[s];
    q[i] = l == 0 ? 0 : l == 15 ? 63 : (11 * l + 3 * s) % 64;
    x[i] = ds * (q[i] - 32);
    if (l == 15) x[i] = 32 * ds;
    else if (q[i] > 0 && q[i] < 63) x[i] += nudge(i, std::fabs(ds));
  }
  EXPECT_EQ(quantize_row(WeightKind::Q6_K, x.data(), 256), block_layout::q6_k(0x2000, sc, q));
}

TEST(GgufQuantBytes, FloatKinds) {
  const std::vector<float> x = {1.0f, -2.0f, 1.0f / 3.0f, 0.1f, 65504.0f, 1e-8f, 6e-8f, -0.0f};
  const std::vector<uint16_t> f16 = {0x3C00, 0xC000, 0x3555, 0x2E66, 0x7BFF, 0x0000, 0x0001, 0x8000};
  const std::vector<uint16_t> bf16 = {0x3F80, 0xC000, 0x3EAB, 0x3DCD, 0x4780, 0x322C, 0x3381, 0x8000};
  std::string e16(16, '\0'), eb16(16, '\0'), e32(32, '\0');
  for (int i = 0; i < 8; ++i) block_layout::put16(e16, 2 * i, f16[i]), block_layout::put16(eb16, 2 * i, bf16[i]);
  std::memcpy(&e32[0], x.data(), 32);
  EXPECT_EQ(quantize_row(WeightKind::F16, x.data(), 8), e16);
  EXPECT_EQ(quantize_row(WeightKind::BF16, x.data(), 8), eb16);
  EXPECT_EQ(quantize_row(WeightKind::F32, x.data(), 8), e32);
}

// ---- the error bound -------------------------------------------------------------------------

TEST(GgufQuant, RoundTripWithinTheBoundPerKind) {
  // Rows of 1024 values with different shapes, each value checked against the documented bound
  // for its block's largest |x|.
  const int64_t n = 1024;
  Rng rng{12345};
  std::vector<std::vector<float>> rows;
  auto row = [&](auto f) {
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = f(i);
    rows.push_back(x);
  };
  row([&](int64_t) { return rng.uniform(); });
  row([&](int64_t) { return 0.02f * (rng.uniform() + rng.uniform() + rng.uniform()); });  // weights-like
  row([&](int64_t) { return 10.0f + rng.uniform(); });                                     // all positive, offset
  row([&](int64_t) { return -3.0f + 0.5f * rng.uniform(); });                              // all negative
  row([&](int64_t i) { return i % 97 == 0 ? 50.0f * rng.uniform() : 0.01f * rng.uniform(); });  // outliers
  row([&](int64_t i) { return (i / 32) % 2 ? 1000.0f * rng.uniform() : 1e-3f * rng.uniform(); });  // blocks of mixed scale
  row([&](int64_t) { return 1e-6f * rng.uniform(); });                                     // f16 scales subnormal
  row([&](int64_t) { return 3e3f * rng.uniform(); });
  row([&](int64_t) { return 0.0f; });
  row([&](int64_t) { return -0.75f; });
  row([&](int64_t i) { return static_cast<float>(i % 16) - 8.0f; });
  for (WeightKind k : kAllKinds) {
    const int64_t block = k == WeightKind::Q4_K || k == WeightKind::Q5_K || k == WeightKind::Q6_K ? 256 : 32;
    double worst = 0.0;  // largest error / bound seen
    for (size_t r = 0; r < rows.size(); ++r) {
      const std::vector<float>& x = rows[r];
      const std::string bytes = quantize_row(k, x.data(), n);
      ASSERT_EQ(bytes.size(), engine::row_bytes(k, n)) << engine::kind_name(k);
      const std::vector<float> y = dequant(k, bytes, n);
      for (int64_t b0 = 0; b0 < n; b0 += block) {
        double amax = 0.0;
        for (int64_t i = b0; i < b0 + block; ++i) amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
        const double bound = quantize_error_bound(k, amax);
        for (int64_t i = b0; i < b0 + block; ++i) {
          const double err = std::fabs(static_cast<double>(y[i]) - x[i]);
          ASSERT_LE(err, bound) << engine::kind_name(k) << " row " << r << " value " << i << ": " << x[i] << " -> " << y[i];
          if (bound > 0) worst = std::max(worst, err / bound);
        }
      }
      if (r == 8) {  // all zeros: exactly zero
        for (float v : y) ASSERT_EQ(v, 0.0f) << engine::kind_name(k);
      }
    }
    // The bound is tight: on these rows some value comes within 20 % of it (measured: 0.92 for
    // Q6_K to 0.995 for Q4_0).
    if (k != WeightKind::F32) EXPECT_GT(worst, 0.8) << engine::kind_name(k);
  }
}

TEST(GgufQuant, ASecondQuantizationOfTheDequantizedValuesGivesTheSameFloats) {
  // For the float kinds and the single-scale kinds the dequantized values are a fixed point: the
  // scale comes back from the extreme code exactly, and with it every code. (Not so for the
  // K-quants, whose 6-bit and int8 scales round up and may leave a sub-block's extreme off its
  // last code.)
  Rng rng{7};
  std::vector<float> x(512);
  for (float& v : x) v = rng.uniform();
  for (WeightKind k : {WeightKind::F16, WeightKind::BF16, WeightKind::Q8_0, WeightKind::Q4_0}) {
    const std::string b1 = quantize_row(k, x.data(), 512);
    const std::vector<float> y = dequant(k, b1, 512);
    EXPECT_EQ(quantize_row(k, y.data(), 512), b1) << engine::kind_name(k);
  }
}

// ---- refusals ----------------------------------------------------------------------------------

TEST(GgufQuant, RowsThatAreNotWholeBlocksRefused) {
  for (WeightKind k : kAllKinds) {
    const engine::KindTraits& t = engine::kind_traits(k);
    if (t.block == 1) continue;
    for (int64_t n : {int64_t{t.block} - 1, int64_t{t.block} + 1, int64_t{t.block} / 8 * 9, int64_t{-32}}) {
      std::vector<float> x(static_cast<size_t>(std::max<int64_t>(n, 0)), 0.5f);
      std::string e;
      try {
        quantize_row(k, x.data(), n);
        e = "<accepted>";
      } catch (const std::invalid_argument& ex) {
        e = ex.what();
      }
      EXPECT_TRUE(has(e, std::to_string(n) + " values are not whole " + t.name + " blocks of " + std::to_string(t.block)))
          << t.name << " n=" << n << ": " << e;
    }
  }
  EXPECT_EQ(quantize_row(WeightKind::Q4_K, nullptr, 0), "");
}

TEST(GgufQuant, NonFiniteAndTooLargeValuesRefused) {
  for (WeightKind k : kAllKinds) {
    std::vector<float> x(256, 0.25f);
    x[77] = std::numeric_limits<float>::quiet_NaN();
    std::string e = error_of(k, x);
    EXPECT_TRUE(has(e, "value 77 is nan")) << engine::kind_name(k) << ": " << e;
    x[77] = -std::numeric_limits<float>::infinity();
    e = error_of(k, x);
    EXPECT_TRUE(has(e, "value 77 is -inf")) << engine::kind_name(k) << ": " << e;
  }
  // Scales beyond an f16: Q8_0 holds |x| up to about 65504 * 127, Q4_0 65504 * 8, Q6_K 65504 * 127 * 32.
  std::vector<float> x(256, 1.0f);
  x[40] = 1e9f;
  EXPECT_TRUE(has(error_of(WeightKind::Q8_0, x), "Q8_0 block 1 needs a scale of")) << error_of(WeightKind::Q8_0, x);
  for (WeightKind k : {WeightKind::Q4_0, WeightKind::Q4_1, WeightKind::Q4_K, WeightKind::Q5_K, WeightKind::Q6_K})
    EXPECT_TRUE(has(error_of(k, x), "values too large")) << engine::kind_name(k) << ": " << error_of(k, x);
  x[40] = -1e6f;  // Q4_1's min
  EXPECT_TRUE(has(error_of(WeightKind::Q4_1, x), "needs a min of")) << error_of(WeightKind::Q4_1, x);
  x[40] = 1e6f;  // fits Q8_0 (d = 7874)
  EXPECT_EQ(error_of(WeightKind::Q8_0, x), "<accepted>");
  x[40] = 70000.0f;
  EXPECT_TRUE(has(error_of(WeightKind::F16, x), "value 40 = 70000 is outside F16's range")) << error_of(WeightKind::F16, x);
  x[40] = std::numeric_limits<float>::max();
  EXPECT_TRUE(has(error_of(WeightKind::BF16, x), "rounds to infinity in BF16")) << error_of(WeightKind::BF16, x);
  EXPECT_EQ(error_of(WeightKind::F32, x), "<accepted>");
}

// ---- GGUF files -------------------------------------------------------------------------------

TEST(GgufQuant, WrittenFileParsesAndDequantizesLikeDequantizeRow) {
  const int64_t cols = 512, rows = 3;
  Rng rng{99};
  std::vector<float> x(static_cast<size_t>(cols * rows));
  for (float& v : x) v = 0.1f * rng.uniform();
  GgufWriter w;
  w.add("general.architecture", GgufValue::of_string("llama"));
  for (WeightKind k : kAllKinds) add_quantized_tensor(w, std::string("t.") + engine::kind_name(k), {cols, rows}, k, x.data());
  const GgufFile f = GgufFile::parse(w.serialize(), "quant.gguf");
  ASSERT_EQ(f.tensors().size(), 9u);
  for (WeightKind k : kAllKinds) {
    const GgufTensorInfo& t = f.tensor(std::string("t.") + engine::kind_name(k));
    EXPECT_EQ(t.type, engine::kind_traits(k).ggml_type);
    EXPECT_EQ(t.ne, (std::vector<int64_t>{cols, rows}));
    EXPECT_EQ(t.nbytes, engine::row_bytes(k, cols) * rows);
    const std::vector<float> got = f.dequantize(t);
    for (int64_t r = 0; r < rows; ++r) {
      const std::string row = quantize_row(k, x.data() + r * cols, cols);
      EXPECT_EQ(std::string(f.tensor_bytes(t).substr(static_cast<size_t>(r * row.size()), row.size())), row);
      const std::vector<float> want = dequant(k, row, cols);
      EXPECT_EQ(std::memcmp(got.data() + r * cols, want.data(), static_cast<size_t>(cols) * 4), 0)
          << engine::kind_name(k) << " row " << r;
    }
  }
}

TEST(GgufQuant, AddQuantizedTensorRefusalsNameTheTensor) {
  GgufWriter w;
  std::vector<float> x(512, 1.0f);
  try {
    add_quantized_tensor(w, "blk.0.attn_q.weight", {128, 4}, WeightKind::Q4_K, x.data());
    FAIL() << "accepted rows of 128 as Q4_K";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(has(e.what(), "tensor 'blk.0.attn_q.weight' (Q4_K)") &&
                has(e.what(), "row length ne[0] = 128 is not a multiple of Q4_K's block size 256"))
        << e.what();
  }
  x[300] = std::numeric_limits<float>::infinity();
  try {
    add_quantized_tensor(w, "w", {128, 4}, WeightKind::Q8_0, x.data());
    FAIL() << "accepted inf";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(has(e.what(), "tensor 'w' (Q8_0), row 2: quantize_row: value 44 is inf")) << e.what();
  }
  x[300] = 1.0f;
  add_quantized_tensor(w, "w", {128, 4}, WeightKind::Q8_0, x.data());
  EXPECT_THROW(add_quantized_tensor(w, "w", {128, 4}, WeightKind::Q8_0, x.data()), std::invalid_argument);  // duplicate
  EXPECT_THROW(add_quantized_tensor(w, "e", {}, WeightKind::Q8_0, x.data()), std::invalid_argument);
}

namespace {

std::string parse_error(const std::string& bytes) {
  try {
    GgufFile::parse(bytes, "q.gguf");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "<parsed>";
}

// The offset of tensor info `name`'s type field in a file written by GgufWriter with no metadata.
size_t type_field(const std::string& file, const std::string& name, size_t n_dims) {
  const size_t at = file.find(name);
  return at + name.size() + 4 + 8 * n_dims;
}

}  // namespace

TEST(GgufQuant, ReaderRefusesQuantizedTensorsThatDoNotFit) {
  std::vector<float> x(256 * 2, 0.5f);
  GgufWriter w;
  add_quantized_tensor(w, "k", {256, 2}, WeightKind::Q4_K, x.data());  // 288 bytes, the data section 288
  const std::string good = w.serialize();
  ASSERT_EQ(parse_error(good), "<parsed>");
  const size_t tf = type_field(good, "k", 2);
  uint32_t type = 0;
  std::memcpy(&type, good.data() + tf, 4);
  ASSERT_EQ(type, ggml_type::Q4_K);
  auto with_type = [&](uint32_t t) {
    std::string b = good;
    std::memcpy(&b[tf], &t, 4);
    return b;
  };
  // A type whose blocks need more bytes than the data section has (Q5_K: 352, Q6_K: 420).
  for (uint32_t t : {ggml_type::Q5_K, ggml_type::Q6_K, ggml_type::F16}) {
    const std::string e = parse_error(with_type(t));
    EXPECT_TRUE(has(e, "GGUF file 'q.gguf'") && has(e, "tensor 'k'") && has(e, "lies outside the 288-byte data section"))
        << ggml_type_label(t) << ": " << e;
  }
  // A type whose block does not divide the row: ne[0] = 256 is whole Q8_0 blocks, so take a
  // 32-row tensor instead.
  {
    GgufWriter w2;
    std::vector<float> y(64, 0.5f);
    add_quantized_tensor(w2, "q", {32, 2}, WeightKind::Q8_0, y.data());
    std::string b = w2.serialize();
    const uint32_t t = ggml_type::Q6_K;
    std::memcpy(&b[type_field(b, "q", 2)], &t, 4);
    const std::string e = parse_error(b);
    EXPECT_TRUE(has(e, "tensor 'q' (Q6_K (type 14)): row length ne[0] = 32 is not a multiple of Q6_K's block size 256"))
        << e;
  }
  // Data past the end of the file: cut anywhere inside the tensor or its padding.
  for (size_t cut : {size_t{1}, size_t{100}, size_t{287}}) {
    const std::string e = parse_error(good.substr(0, good.size() - cut));
    EXPECT_TRUE(has(e, "GGUF file 'q.gguf'") && (has(e, "lies outside") || has(e, "truncated"))) << cut << ": " << e;
  }
  // A type that fits the bytes but that lorazip does not dequantize parses and is refused by name.
  const GgufFile f = GgufFile::parse(with_type(10), "q.gguf");  // Q2_K: 84 bytes a block
  try {
    f.dequantize(f.tensor("k"));
    FAIL() << "Q2_K dequantized";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(has(e.what(), "tensor 'k' has type Q2_K (type 10), which lorazip does not dequantize")) << e.what();
  }
  // ggml_dequantize itself checks the byte count against the values for every kind.
  for (WeightKind k : kAllKinds) {
    const engine::KindTraits& t = engine::kind_traits(k);
    std::vector<uint8_t> src(t.block_bytes * 2 + 1);
    std::vector<float> dst(t.block * 2);
    try {
      ggml_dequantize(t.ggml_type, src.data(), src.size(), dst.data(), t.block * 2, "tensor 'z'");
      FAIL() << t.name;
    } catch (const std::runtime_error& e) {
      EXPECT_TRUE(has(e.what(), "tensor 'z': " + std::to_string(src.size()) + " bytes do not hold")) << e.what();
    }
  }
}
