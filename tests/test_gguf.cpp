// GGUF reader, dequantizer and writer, torch-free. Files here are built byte by byte from the
// format's description (GGUF.md), not with GgufWriter, so the reader is checked against the spec;
// the writer must then produce the same bytes. Every malformed file is refused with a message
// that names the file and the problem; dequantized values equal hand-computed ones.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <unistd.h>

#include "codec/engine/blocks.h"
#include "common/fs.h"
#include "model/gguf.h"
#include "model/gguf_llama.h"
#include "tests/block_layout.h"

using namespace lorazip;
namespace fs = std::filesystem;

namespace {

// A GGUF file written by hand: little-endian fields appended in order.
struct Blob {
  std::string b;
  Blob& u8(uint8_t v) { b.push_back(static_cast<char>(v)); return *this; }
  Blob& u16(uint16_t v) { return raw(&v, 2); }
  Blob& u32(uint32_t v) { return raw(&v, 4); }
  Blob& i32(int32_t v) { return raw(&v, 4); }
  Blob& u64(uint64_t v) { return raw(&v, 8); }
  Blob& f32(float v) { return raw(&v, 4); }
  Blob& f64(double v) { return raw(&v, 8); }
  Blob& str(const std::string& s) { u64(s.size()); b += s; return *this; }
  Blob& raw(const void* p, size_t n) { b.append(static_cast<const char*>(p), n); return *this; }
  Blob& pad(size_t a) { while (b.size() % a) b.push_back('\0'); return *this; }
  Blob& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return raw("GGUF", 4).u32(version).u64(n_tensors).u64(n_kv);
  }
  Blob& kv_str(const std::string& k, const std::string& v) { return str(k).u32(8).str(v); }
  Blob& kv_u32(const std::string& k, uint32_t v) { return str(k).u32(4).u32(v); }
  Blob& kv_f32(const std::string& k, float v) { return str(k).u32(6).f32(v); }
  Blob& tinfo(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
};

// Hand-made blocks, from GGUF.md's layouts.
// Q8_0: f16 d = 0.5 (0x3800), q_j = j - 16  ->  x_j = 0.5 * (j - 16).
std::string q8_0_block() {
  Blob x;
  x.u16(0x3800);
  for (int j = 0; j < 32; ++j) x.u8(static_cast<uint8_t>(static_cast<int8_t>(j - 16)));
  return x.b;
}
// Q4_0: d = 2 (0x4000); byte j = low nibble j, high nibble 15 - j  ->  x_j = 2 (j - 8), x_{j+16} = 2 (7 - j).
std::string q4_0_block() {
  Blob x;
  x.u16(0x4000);
  for (int j = 0; j < 16; ++j) x.u8(static_cast<uint8_t>(j | ((15 - j) << 4)));
  return x.b;
}
// Q4_1: d = 0.25 (0x3400), m = -1 (0xBC00); byte j = low j, high (j + 3) % 16 -> x = 0.25 n - 1.
std::string q4_1_block() {
  Blob x;
  x.u16(0x3400).u16(0xBC00);
  for (int j = 0; j < 16; ++j) x.u8(static_cast<uint8_t>(j | (((j + 3) % 16) << 4)));
  return x.b;
}

// The reference file: metadata of every type (nested array included) and one tensor of each
// supported type, data aligned to 32.
Blob reference_file() {
  Blob f;
  f.header(6, 16);
  f.kv_str("general.architecture", "llama");
  f.str("k.u8").u32(0).u8(200);
  f.str("k.i8").u32(1).u8(static_cast<uint8_t>(-5));
  f.str("k.u16").u32(2).u16(60000);
  f.str("k.i16").u32(3).u16(static_cast<uint16_t>(-300));
  f.kv_u32("k.u32", 4000000000u);
  f.str("k.i32").u32(5).i32(-70000);
  f.kv_f32("k.f32", 1.5f);
  f.str("k.bool").u32(7).u8(1);
  f.str("k.u64").u32(10).u64(uint64_t{1} << 40);
  f.str("k.i64").u32(11).u64(static_cast<uint64_t>(int64_t{-1} << 40));
  f.str("k.f64").u32(12).f64(0.1);
  f.str("k.strings").u32(9).u32(8).u64(3).str("a").str("").str("ĠHello");
  f.str("k.ints").u32(9).u32(5).u64(3).i32(1).i32(-2).i32(3);
  f.str("k.nested").u32(9).u32(9).u64(2).u32(4).u64(2).u32(7).u32(8).u32(4).u64(0);  // [[7, 8], []]
  f.str("k.floats").u32(9).u32(6).u64(2).f32(0.5f).f32(-2.0f);
  // tensors: F32 [4, 2], F16 [3], BF16 [2], Q8_0 [32], Q4_0 [32], Q4_1 [32]
  f.tinfo("t.f32", {4, 2}, 0, 0);
  f.tinfo("t.f16", {3}, 1, 32);
  f.tinfo("t.bf16", {2}, 30, 64);
  f.tinfo("t.q8_0", {32}, 8, 96);
  f.tinfo("t.q4_0", {32}, 2, 160);
  f.tinfo("t.q4_1", {32}, 3, 192);
  f.pad(32);
  for (int i = 0; i < 8; ++i) f.f32(static_cast<float>(i) - 3.5f);
  f.pad(32);
  f.u16(0x3C00).u16(0xC000).u16(0x3555);  // 1, -2, 0.333251953125
  f.pad(32);
  f.u16(0x3F80).u16(0xC040);  // 1, -3
  f.pad(32);
  f.b += q8_0_block();
  f.pad(32);
  f.b += q4_0_block();
  f.pad(32);
  f.b += q4_1_block();
  f.pad(32);
  return f;
}

std::string parse_error(const std::string& bytes, const std::string& name = "bad.gguf") {
  try {
    GgufFile::parse(bytes, name);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "<parsed>";
}

bool has(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

}  // namespace

TEST(GgufRead, EveryMetadataType) {
  GgufFile f = GgufFile::parse(reference_file().b, "ref.gguf");
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.metadata().size(), 16u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_u32("k.u8"), 200u);
  EXPECT_EQ(f.get_i32("k.i8"), -5);
  EXPECT_EQ(f.get_u32("k.u16"), 60000u);
  EXPECT_EQ(f.get_i32("k.i16"), -300);
  EXPECT_EQ(f.get_u32("k.u32"), 4000000000u);
  EXPECT_EQ(f.get_i32("k.i32"), -70000);
  EXPECT_EQ(f.get_f32("k.f32"), 1.5f);
  EXPECT_TRUE(f.get_bool("k.bool"));
  EXPECT_EQ(f.get_u64("k.u64"), uint64_t{1} << 40);
  EXPECT_EQ(f.get_i64("k.i64"), int64_t{-1} << 40);
  EXPECT_EQ(f.get_f64("k.f64"), 0.1);
  EXPECT_EQ(f.get_string_array("k.strings"), (std::vector<std::string>{"a", "", "ĠHello"}));
  EXPECT_EQ(f.get_i32_array("k.ints"), (std::vector<int32_t>{1, -2, 3}));
  EXPECT_EQ(f.get_f32_array("k.floats"), (std::vector<float>{0.5f, -2.0f}));
  const GgufValue& n = f.get("k.nested");
  ASSERT_EQ(n.type, GgufValueType::ARRAY);
  ASSERT_EQ(n.elem_type, GgufValueType::ARRAY);
  ASSERT_EQ(n.array.size(), 2u);
  ASSERT_EQ(n.array[0].array.size(), 2u);
  EXPECT_EQ(n.array[0].array[1].u, 8u);
  EXPECT_TRUE(n.array[1].array.empty());
  EXPECT_EQ(f.get_u32_or("absent", 7), 7u);
  EXPECT_EQ(f.get_string_or("absent", "x"), "x");
  EXPECT_FALSE(f.has("absent"));
}

TEST(GgufRead, TypeErrorsNameTheKeyAndTypes) {
  GgufFile f = GgufFile::parse(reference_file().b, "ref.gguf");
  auto msg = [&](auto fn) {
    try {
      fn();
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  std::string e = msg([&] { f.get_u32("general.architecture"); });
  EXPECT_TRUE(has(e, "ref.gguf") && has(e, "'general.architecture'") && has(e, "string") && has(e, "u32")) << e;
  e = msg([&] { f.get_u32("k.i32"); });  // -70000 does not fit
  EXPECT_TRUE(has(e, "'k.i32'") && has(e, "does not fit")) << e;
  e = msg([&] { f.get_string_array("k.ints"); });
  EXPECT_TRUE(has(e, "'k.ints'") && has(e, "array of i32") && has(e, "array of string")) << e;
  e = msg([&] { f.get_i32_array("k.strings"); });
  EXPECT_TRUE(has(e, "'k.strings'")) << e;
  e = msg([&] { f.get_f32("k.u8"); });
  EXPECT_TRUE(has(e, "'k.u8'") && has(e, "f32")) << e;
  e = msg([&] { f.get_string("missing.key"); });
  EXPECT_TRUE(has(e, "'missing.key'") && has(e, "missing")) << e;
  e = msg([&] { f.tensor("nope"); });
  EXPECT_TRUE(has(e, "'nope'")) << e;
}

TEST(GgufRead, TensorInfosAndBytes) {
  GgufFile f = GgufFile::parse(reference_file().b, "ref.gguf");
  ASSERT_EQ(f.tensors().size(), 6u);
  const GgufTensorInfo& t = f.tensor("t.f32");
  EXPECT_EQ(t.ne, (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(t.nbytes, 32u);
  EXPECT_EQ(f.tensor("t.q8_0").nbytes, 34u);
  EXPECT_EQ(f.tensor("t.q4_0").nbytes, 18u);
  EXPECT_EQ(f.tensor("t.q4_1").nbytes, 20u);
  EXPECT_EQ(f.tensor_bytes(f.tensor("t.q8_0")), q8_0_block());
  EXPECT_EQ(f.data_offset() % 32, 0u);
}

TEST(GgufDequant, EachTypeMatchesHandComputedValues) {
  GgufFile f = GgufFile::parse(reference_file().b, "ref.gguf");
  std::vector<float> v = f.dequantize(f.tensor("t.f32"));
  for (int i = 0; i < 8; ++i) EXPECT_EQ(v[i], i - 3.5f);
  EXPECT_EQ(f.dequantize(f.tensor("t.f16")), (std::vector<float>{1.0f, -2.0f, 0.333251953125f}));
  EXPECT_EQ(f.dequantize(f.tensor("t.bf16")), (std::vector<float>{1.0f, -3.0f}));
  v = f.dequantize(f.tensor("t.q8_0"));
  for (int j = 0; j < 32; ++j) EXPECT_EQ(v[j], 0.5f * (j - 16)) << j;
  v = f.dequantize(f.tensor("t.q4_0"));
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(v[j], 2.0f * (j - 8)) << j;
    EXPECT_EQ(v[j + 16], 2.0f * (7 - j)) << j;
  }
  v = f.dequantize(f.tensor("t.q4_1"));
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(v[j], 0.25f * j - 1.0f) << j;
    EXPECT_EQ(v[j + 16], 0.25f * ((j + 3) % 16) - 1.0f) << j;
  }
}

TEST(GgufDequant, KQuantsMatchHandComputedValues) {
  // One super-block of each K-quant, assembled from the layout (block_layout.h); every value is
  // exact in float, so the engine's formulas must give exactly these.
  const std::vector<int> sc = {1, 2, 3, 4, 17, 33, 50, 63}, mn = {0, 5, 10, 15, 20, 40, 60, 63};
  std::vector<int> q4(256), q5(256), q6(256), sc6(16);
  for (int i = 0; i < 256; ++i) q4[i] = (7 * i) % 16, q5[i] = (13 * i) % 32, q6[i] = (5 * i) % 64;
  for (int s = 0; s < 16; ++s) sc6[s] = 16 * s - 120;
  Blob f;
  f.header(3, 0).tinfo("t.q4_k", {256}, 12, 0).tinfo("t.q5_k", {256}, 13, 160).tinfo("t.q6_k", {256}, 14, 352).pad(32);
  f.b += block_layout::q4_k(0x3800, 0x3400, sc, mn, q4);  // d 0.5, dmin 0.25
  f.pad(32);
  f.b += block_layout::q5_k(0x3400, 0x3800, sc, mn, q5);  // d 0.25, dmin 0.5
  f.pad(32);
  f.b += block_layout::q6_k(0x3000, sc6, q6);  // d 0.125
  f.pad(32);
  GgufFile g = GgufFile::parse(f.b, "k.gguf");
  EXPECT_EQ(g.tensor("t.q4_k").nbytes, 144u);
  EXPECT_EQ(g.tensor("t.q5_k").nbytes, 176u);
  EXPECT_EQ(g.tensor("t.q6_k").nbytes, 210u);
  const std::vector<float> v4 = g.dequantize(g.tensor("t.q4_k")), v5 = g.dequantize(g.tensor("t.q5_k")),
                           v6 = g.dequantize(g.tensor("t.q6_k"));
  for (int i = 0; i < 256; ++i) {
    const int s = i / 32;
    EXPECT_EQ(v4[i], 0.5f * sc[s] * q4[i] - 0.25f * mn[s]) << i;
    EXPECT_EQ(v5[i], 0.25f * sc[s] * q5[i] - 0.5f * mn[s]) << i;
    EXPECT_EQ(v6[i], 0.125f * sc6[i / 16] * (q6[i] - 32)) << i;
  }
}

TEST(GgufDequant, TheEngineKindsAreTheDequantizedTypes) {
  // One list: every engine kind is dequantized, with the same block size and bytes as ggml's
  // table; every other ggml type is not.
  for (int k = 0; k < engine::kWeightKinds; ++k) {
    const engine::KindTraits& t = engine::kind_traits(static_cast<engine::WeightKind>(k));
    const GgmlTypeTraits* g = ggml_type_traits(t.ggml_type);
    ASSERT_NE(g, nullptr) << t.name;
    EXPECT_STREQ(g->name, t.name);
    EXPECT_EQ(g->block_size, t.block) << t.name;
    EXPECT_EQ(g->type_size, t.block_bytes) << t.name;
    EXPECT_TRUE(ggml_can_dequantize(t.ggml_type)) << t.name;
    EXPECT_TRUE(has(ggml_dequantizable_types(), t.name)) << t.name;
  }
  for (uint32_t id : {6u, 7u, 9u, 10u, 11u, 15u, 16u, 20u, 23u, 24u, 28u, 39u, 77u})
    EXPECT_FALSE(ggml_can_dequantize(id)) << id;
  EXPECT_EQ(ggml_dequantizable_types(), "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K");
}

TEST(GgufDequant, UnsupportedTypeRefusedByNameWithTheTensor) {
  Blob f;
  f.header(1, 0).tinfo("blk.0.ffn_up.weight", {256}, 10, 0).pad(32);
  f.b += std::string(84, '\x01');
  f.pad(32);
  GgufFile g = GgufFile::parse(f.b, "k.gguf");  // parses: Q2_K's size is known
  try {
    g.dequantize(g.tensor("blk.0.ffn_up.weight"));
    FAIL() << "Q2_K dequantized";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(has(e.what(), "Q2_K (type 10)") && has(e.what(), "'blk.0.ffn_up.weight'") && has(e.what(), "k.gguf") &&
                has(e.what(), "supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K"))
        << e.what();
  }
}

TEST(GgufWrite, SameBytesAsTheHandBuiltFile) {
  // The writer, given the reference file's content, must produce the reference file's bytes.
  GgufFile ref = GgufFile::parse(reference_file().b, "ref.gguf");
  GgufWriter w;
  for (const auto& kv : ref.metadata()) w.add(kv.first, kv.second);
  for (const auto& t : ref.tensors()) w.add_tensor(t.name, t.ne, t.type, std::string(ref.tensor_bytes(t)));
  EXPECT_EQ(w.serialize(), reference_file().b);
}

TEST(GgufWrite, RoundTripWithAlignmentAndAtomicFile) {
  GgufWriter w;
  w.set_alignment(64);
  w.add("general.architecture", GgufValue::of_string("llama"));
  w.add("x.tokens", GgufValue::of_string_array({"<s>", "Ġa", "\n"}));
  w.add("x.ids", GgufValue::of_i32_array({-1, 0, 7}));
  std::vector<float> a = {1, 2, 3}, b(64, 0.25f);
  w.add_f32_tensor("a", {3}, a.data());
  w.add_f32_tensor("b", {16, 4}, b.data());
  const std::string path = (fs::temp_directory_path() / ("lorazip_gguf_" + std::to_string(::getpid()) + ".gguf")).string();
  w.write(path);
  GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.get_u32("general.alignment"), 64u);
  EXPECT_EQ(f.get_string_array("x.tokens"), (std::vector<std::string>{"<s>", "Ġa", "\n"}));
  EXPECT_EQ(f.get_i32_array("x.ids"), (std::vector<int32_t>{-1, 0, 7}));
  EXPECT_EQ(f.dequantize(f.tensor("a")), a);
  EXPECT_EQ(f.dequantize(f.tensor("b")), b);
  EXPECT_EQ(f.tensor("b").offset % 64, 0u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_TRUE(is_gguf_path(path));
  fs::remove(path);
  EXPECT_THROW(w.add("general.architecture", GgufValue::of_string("x")), std::invalid_argument);
  EXPECT_THROW(w.add_f32_tensor("a", {3}, a.data()), std::invalid_argument);
  EXPECT_THROW(w.add_tensor("c", {3}, ggml_type::F32, std::string(8, '\0')), std::invalid_argument);
  EXPECT_THROW(w.add_tensor("d", {31}, ggml_type::Q8_0, std::string(34, '\0')), std::invalid_argument);
}

TEST(GgufMalformed, TruncationAtEveryByteRefused) {
  const std::string full = reference_file().b;
  ASSERT_NO_THROW(GgufFile::parse(full, "ref.gguf"));
  for (size_t n = 0; n < full.size(); ++n) {
    const std::string e = parse_error(full.substr(0, n), "cut.gguf");
    ASSERT_TRUE(has(e, "GGUF file 'cut.gguf'")) << "prefix of " << n << " bytes: " << e;
  }
}

TEST(GgufMalformed, EachProblemRefusedWithAMessageNamingIt) {
  struct Case {
    const char* what;
    std::string bytes;
    std::string expect;
  };
  std::vector<Case> cases;
  auto one_tensor = [](uint32_t n_dims, std::vector<uint64_t> ne, uint32_t type, uint64_t offset, size_t data) {
    Blob f;
    f.header(1, 0).str("w").u32(n_dims);
    for (uint64_t d : ne) f.u64(d);
    f.u32(type).u64(offset).pad(32);
    f.b += std::string(data, '\0');
    return f.b;
  };
  {
    std::string b = reference_file().b;
    b[0] = 'X';
    cases.push_back({"bad magic", b, "bad magic"});
  }
  cases.push_back({"version 1", Blob().header(0, 0, 1).b, "version 1 is not supported"});
  cases.push_back({"version 4", Blob().header(0, 0, 4).b, "unsupported GGUF version 4"});
  cases.push_back({"huge tensor count", Blob().header(uint64_t{1} << 60, 0).b, "tensor count"});
  cases.push_back({"huge metadata count", Blob().header(0, ~uint64_t{0}).b, "metadata count"});
  cases.push_back({"huge key length", Blob().header(0, 1).u64(~uint64_t{0}).u32(0).u8(0).b, "string length"});
  cases.push_back({"huge string value", Blob().header(0, 1).str("k").u32(8).u64(uint64_t{1} << 62).b, "string length"});
  cases.push_back({"huge array", Blob().header(0, 1).str("k").u32(9).u32(4).u64(uint64_t{1} << 61).b, "cannot fit"});
  cases.push_back({"unknown value type", Blob().header(0, 1).str("k").u32(13).u32(0).b, "unknown value type 13"});
  cases.push_back({"unknown array type", Blob().header(0, 1).str("k").u32(9).u32(99).u64(0).b, "unknown array element type 99"});
  cases.push_back({"bool 2", Blob().header(0, 1).str("k").u32(7).u8(2).b, "neither 0 nor 1"});
  {
    Blob f;
    f.header(0, 1).str("k").u32(9);                 // an array ...
    for (int d = 0; d < 10; ++d) f.u32(9).u64(1);  // ... of one array, ten levels deep ...
    f.u32(4).u64(0);                                // ... of no u32
    cases.push_back({"deep nesting", f.b, "nested deeper"});
  }
  cases.push_back({"duplicate key", Blob().header(0, 2).kv_u32("k", 1).kv_u32("k", 2).b, "duplicate metadata key 'k'"});
  cases.push_back({"alignment 48", Blob().header(0, 1).kv_u32("general.alignment", 48).b, "not a power of two"});
  cases.push_back({"alignment string", Blob().header(0, 1).kv_str("general.alignment", "32").b, "general.alignment"});
  cases.push_back({"n_dims 5", one_tensor(5, {1, 1, 1, 1, 1}, 0, 0, 32), "n_dims = 5"});
  cases.push_back({"n_dims 0", one_tensor(0, {}, 0, 0, 32), "n_dims = 0"});
  cases.push_back({"unknown ggml type", one_tensor(1, {8}, 77, 0, 32), "unknown ggml type 77"});
  cases.push_back({"removed ggml type 4", one_tensor(1, {32}, 4, 0, 32), "unknown ggml type 4"});
  cases.push_back({"row not whole blocks", one_tensor(1, {31}, 8, 0, 64), "not a multiple of Q8_0's block size 32"});
  cases.push_back({"negative ne", one_tensor(1, {~uint64_t{0}}, 0, 0, 32), "out of range"});
  cases.push_back({"numel overflow", one_tensor(4, {1u << 20, 1u << 20, 1u << 20, 1u << 20}, 0, 0, 32), "overflows"});
  cases.push_back({"offset out of range", one_tensor(1, {8}, 0, 64, 32), "outside"});
  cases.push_back({"offset near 2^64", one_tensor(1, {8}, 0, ~uint64_t{0} - 31, 32), "outside"});
  cases.push_back({"misaligned offset", one_tensor(1, {4}, 0, 4, 64), "misaligned"});
  cases.push_back({"data missing padding", one_tensor(1, {4}, 0, 0, 16), "truncated"});
  {
    Blob f;
    f.header(2, 0).tinfo("w", {8}, 0, 0).tinfo("w", {8}, 0, 32).pad(32);
    f.b += std::string(64, '\0');
    cases.push_back({"duplicate tensor", f.b, "duplicate tensor 'w'"});
  }
  {
    Blob f;
    f.header(2, 0).tinfo("a", {16}, 0, 0).tinfo("b", {8}, 0, 32).pad(32);
    f.b += std::string(64, '\0');
    cases.push_back({"overlapping tensors", f.b, "overlaps"});
  }
  {
    Blob f;
    f.header(1, 0).tinfo("", {8}, 0, 0).pad(32);
    f.b += std::string(32, '\0');
    cases.push_back({"empty tensor name", f.b, "empty name"});
  }
  for (const Case& c : cases) {
    const std::string e = parse_error(c.bytes, "case.gguf");
    EXPECT_TRUE(has(e, "GGUF file 'case.gguf'") && has(e, c.expect)) << c.what << ": " << e;
  }
}

TEST(GgufLlama, QkPermutationMatchesTheFormulaAndRoundTrips) {
  // 2 heads of 4 rows, one float per row: gguf_row[h*4 + 2i + t] = hf_row[h*4 + t*2 + i].
  const std::vector<float> hf = {0, 1, 2, 3, 4, 5, 6, 7};
  std::vector<float> g(8), back(8);
  permute_qk_rows(hf.data(), g.data(), 8, sizeof(float), 2, true);
  EXPECT_EQ(g, (std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7}));
  permute_qk_rows(g.data(), back.data(), 8, sizeof(float), 2, false);
  EXPECT_EQ(back, hf);
  // hd = 6: [0 1 2 | 3 4 5] -> 0 3 1 4 2 5
  const std::vector<float> hf6 = {0, 1, 2, 3, 4, 5};
  std::vector<float> g6(6);
  permute_qk_rows(hf6.data(), g6.data(), 6, sizeof(float), 1, true);
  EXPECT_EQ(g6, (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_THROW(permute_qk_rows(hf.data(), g.data(), 8, sizeof(float), 3, true), std::invalid_argument);
  EXPECT_THROW(permute_qk_rows(hf6.data(), g6.data(), 6, sizeof(float), 2, true), std::invalid_argument);  // hd 3 is odd
}

TEST(GgufLlama, TensorNamesMapBothWays) {
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
      {"model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"},
      {"model.layers.12.self_attn.q_proj.weight", "blk.12.attn_q.weight"},
      {"model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight"},
      {"model.layers.1.self_attn.v_proj.bias", "blk.1.attn_v.bias"},
      {"model.layers.1.self_attn.o_proj.weight", "blk.1.attn_output.weight"},
      {"model.layers.2.post_attention_layernorm.weight", "blk.2.ffn_norm.weight"},
      {"model.layers.2.mlp.gate_proj.weight", "blk.2.ffn_gate.weight"},
      {"model.layers.2.mlp.up_proj.weight", "blk.2.ffn_up.weight"},
      {"model.layers.29.mlp.down_proj.weight", "blk.29.ffn_down.weight"},
  };
  for (const auto& p : pairs) {
    EXPECT_EQ(gguf_tensor_name(p.first), p.second);
    EXPECT_EQ(hf_tensor_name(p.second), p.first);
  }
  EXPECT_EQ(gguf_module_name("model.layers.3.mlp.up_proj"), "blk.3.ffn_up");
  for (const char* bad : {"blk.x.attn_q.weight", "blk.01.attn_q.weight", "rope_freqs.weight", "blk.0.attn_q", "token_embd.weight.lora_a"})
    EXPECT_EQ(hf_tensor_name(bad), "") << bad;
  EXPECT_EQ(gguf_tensor_name("model.layers.0.self_attn.rotary_emb.inv_freq"), "");
}

namespace {

// Metadata of a tiny Llama plus a token_embd tensor of [hidden, vocab], built by hand.
Blob tiny_llama_header(const std::string& arch, uint32_t vocab_kv, bool with_output) {
  Blob f;
  const uint32_t n_tensors = with_output ? 2 : 1;
  f.header(n_tensors, 12);
  f.kv_str("general.architecture", arch);
  f.kv_u32("llama.block_count", 2);
  f.kv_u32("llama.embedding_length", 32);
  f.kv_u32("llama.feed_forward_length", 64);
  f.kv_u32("llama.attention.head_count", 4);
  f.kv_u32("llama.attention.head_count_kv", 2);
  f.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  f.kv_f32("llama.rope.freq_base", 100000.0f);
  f.kv_u32("llama.context_length", 128);
  f.kv_u32("llama.vocab_size", vocab_kv);
  f.kv_u32("tokenizer.ggml.bos_token_id", 1);
  f.kv_u32("tokenizer.ggml.eos_token_id", 2);
  f.tinfo("token_embd.weight", {32, 10}, 0, 0);
  if (with_output) f.tinfo("output.weight", {32, 10}, 0, 1280);
  f.pad(32);
  f.b += std::string(1280 * n_tensors, '\0');
  return f;
}

}  // namespace

TEST(GgufLlama, ConfigFromMetadata) {
  LlamaConfig c = llama_config_from_gguf(GgufFile::parse(tiny_llama_header("llama", 10, false).b, "t.gguf"));
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.intermediate_size, 64);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.resolved_head_dim(), 8);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);  // the f32 in the file read back as its shortest decimal
  EXPECT_EQ(c.rope_theta, 100000.0);
  EXPECT_EQ(c.max_position_embeddings, 128);
  EXPECT_EQ(c.vocab_size, 10);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 2);
  EXPECT_FALSE(llama_config_from_gguf(GgufFile::parse(tiny_llama_header("llama", 10, true).b, "t.gguf")).tie_word_embeddings);
}

TEST(GgufLlama, WrongArchitectureAndInconsistentSizesRefused) {
  auto err = [](const Blob& b) {
    try {
      llama_config_from_gguf(GgufFile::parse(b.b, "t.gguf"));
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("<accepted>");
  };
  std::string e = err(tiny_llama_header("gpt2", 10, false));
  EXPECT_TRUE(has(e, "t.gguf") && has(e, "architecture 'gpt2'")) << e;
  e = err(tiny_llama_header("llama", 11, false));
  EXPECT_TRUE(has(e, "llama.vocab_size = 11")) << e;
}

// The real SmolLM2-135M-Instruct GGUF (scripts/fetch_smollm2.sh), when it is in the cache.
TEST(GgufReal, SmolLM2MetadataMapsToTheExpectedConfig) {
  const char* cache = std::getenv("LORAZIP_CACHE");
  const char* home = std::getenv("HOME");
  const fs::path dir = cache ? fs::path(cache) : (home ? fs::path(home) / ".cache/lorazip" : fs::path());
  const fs::path path = dir / "SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!fs::exists(path)) GTEST_SKIP() << path << " not found (bash scripts/fetch_smollm2.sh fetches it)";
  GgufFile f = GgufFile::open(path.string());
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.tensors().size(), 272u);  // 2 + 9 x 30: no output.weight
  const LlamaConfig c = llama_config_from_gguf(f);
  EXPECT_EQ(c.num_hidden_layers, 30);
  EXPECT_EQ(c.hidden_size, 576);
  EXPECT_EQ(c.num_attention_heads, 9);
  EXPECT_EQ(c.num_key_value_heads, 3);
  EXPECT_EQ(c.resolved_head_dim(), 64);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope_theta, 100000.0);
  EXPECT_EQ(c.max_position_embeddings, 8192);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 2);
  EXPECT_FALSE(f.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "smollm");
  const std::vector<std::string> tokens = f.get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 49152u);
  EXPECT_EQ(tokens[0], "<|endoftext|>");
  EXPECT_EQ(tokens[1], "<|im_start|>");
  EXPECT_EQ(tokens[2], "<|im_end|>");
  EXPECT_EQ(f.get_i32_array("tokenizer.ggml.token_type").size(), 49152u);
  EXPECT_EQ(f.array_size("tokenizer.ggml.merges"), 48900u);
  EXPECT_EQ(f.tensor("blk.0.attn_q.weight").type, ggml_type::Q4_1);
  EXPECT_EQ(f.tensor("token_embd.weight").type, ggml_type::Q8_0);
}
