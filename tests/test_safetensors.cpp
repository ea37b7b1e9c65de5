// safetensors: the writer's bytes equal the reference implementation's (golden vectors, and a
// file written by Python's safetensors re-serialises byte for byte); every malformed header is
// refused with an error naming the file and tensor, by the view parser and the copying one alike;
// views point into the parsed bytes; F16 / BF16 widen to float32 exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string_view>
#include <unistd.h>
#include <vector>

#include "common/fs.h"
#include "model/safetensors.h"

using namespace lorazip;

namespace {

std::string u64le(uint64_t n) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return s;
}

// A file with the given header text (unpadded) and `buffer_bytes` zero bytes of data.
std::string make_file(const std::string& header, size_t buffer_bytes) {
  return u64le(header.size()) + header + std::string(buffer_bytes, '\0');
}

RawTensor f32_tensor(std::vector<int64_t> shape, const std::vector<float>& values) {
  RawTensor t;
  t.dtype = DType::F32;
  t.shape = std::move(shape);
  t.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * 4);
  return t;
}

RawTensor u16_tensor(DType d, const std::vector<uint16_t>& bits) {
  RawTensor t;
  t.dtype = d;
  t.shape = {static_cast<int64_t>(bits.size())};
  t.data.assign(reinterpret_cast<const char*>(bits.data()), bits.size() * 2);
  return t;
}

std::string parse_error(const std::string& bytes) {
  try {
    parse_safetensors(bytes, "bad.safetensors");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "<accepted>";
}

// The view parser's refusal of the same bytes, given in a buffer of their own (nothing after them).
std::string view_error(const std::string& bytes) {
  const std::vector<char> own(bytes.begin(), bytes.end());
  try {
    parse_safetensors_view(std::string_view(own.data(), own.size()), "bad.safetensors");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "<accepted>";
}

void expect_refused(const std::string& bytes, const std::vector<std::string>& must_mention) {
  std::string msg = parse_error(bytes);
  ASSERT_NE(msg, "<accepted>");
  EXPECT_EQ(view_error(bytes), msg) << "the view parser refuses otherwise";
  EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
  for (const auto& s : must_mention) EXPECT_NE(msg.find(s), std::string::npos) << "'" << s << "' not in: " << msg;
}

}  // namespace

TEST(Safetensors, GoldenHeaderSingleTensor) {
  SafetensorsFile f;
  f.tensors["attn.0"] = f32_tensor({1, 2, 3}, {0, 1, 2, 3, 4, 5});
  std::string bytes = serialize_safetensors(f);
  const std::string json = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  ASSERT_EQ(json.size(), 64u);
  EXPECT_EQ(bytes.substr(0, 8), u64le(64));
  EXPECT_EQ(bytes.substr(8, 64), json);
  EXPECT_EQ(bytes.size(), 8u + 64 + 24);
  EXPECT_EQ(bytes.substr(72), f.tensors["attn.0"].data);
}

TEST(Safetensors, GoldenHeaderPaddedWithSpaces) {
  SafetensorsFile f;
  f.tensors["attn0"] = f32_tensor({1, 1, 2, 3}, {0, 1, 2, 3, 4, 5});
  std::string bytes = serialize_safetensors(f);
  const std::string json = R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})";
  ASSERT_EQ(json.size(), 65u);
  EXPECT_EQ(bytes.substr(0, 8), u64le(72));
  EXPECT_EQ(bytes.substr(8, 72), json + std::string(7, ' '));
  EXPECT_EQ(bytes.size(), 8u + 72 + 24);
}

TEST(Safetensors, GoldenEmptyFile) {
  std::string bytes = serialize_safetensors(SafetensorsFile{});
  EXPECT_EQ(bytes, u64le(8) + "{}" + std::string(6, ' '));
  SafetensorsFile back = parse_safetensors(bytes, "empty");
  EXPECT_TRUE(back.tensors.empty());
  EXPECT_TRUE(back.metadata.empty());
}

TEST(Safetensors, RoundTripMixedDtypesOrderedByAlignmentThenName) {
  SafetensorsFile f;
  f.metadata["format"] = "pt";
  f.metadata["note"] = "quotes \" and unicode \xc3\xa9";
  f.tensors["b.f16"] = u16_tensor(DType::F16, {0x3c00, 0xc000, 0x7bff});
  f.tensors["a.bf16"] = u16_tensor(DType::BF16, {0x3f80, 0x4049});
  f.tensors["z.f32"] = f32_tensor({2, 2}, {1.5f, -2.0f, 3.25f, 0.0f});
  f.tensors["y.scalar"] = f32_tensor({}, {7.0f});
  f.tensors["x.empty"] = f32_tensor({0, 3}, {});
  std::string bytes = serialize_safetensors(f);
  SafetensorsFile back = parse_safetensors(bytes, "mixed");
  EXPECT_EQ(back.metadata, f.metadata);
  ASSERT_EQ(back.tensors.size(), f.tensors.size());
  for (const auto& kv : f.tensors) {
    const RawTensor& b = back.tensors.at(kv.first);
    EXPECT_EQ(b.dtype, kv.second.dtype) << kv.first;
    EXPECT_EQ(b.shape, kv.second.shape) << kv.first;
    EXPECT_EQ(b.data, kv.second.data) << kv.first;
  }
  // Layout: 4-byte dtypes first (names sorted: x.empty, y.scalar, z.f32), then 2-byte (a.bf16, b.f16).
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  std::string header = bytes.substr(8, n);
  size_t px = header.find("\"x.empty\""), py = header.find("\"y.scalar\""), pz = header.find("\"z.f32\"");
  size_t pa = header.find("\"a.bf16\""), pb = header.find("\"b.f16\"");
  EXPECT_LT(header.find("__metadata__"), px);
  EXPECT_LT(px, py);
  EXPECT_LT(py, pz);
  EXPECT_LT(pz, pa);
  EXPECT_LT(pa, pb);
  EXPECT_NE(header.find(R"("z.f32":{"dtype":"F32","shape":[2,2],"data_offsets":[4,20]})"), std::string::npos) << header;
  EXPECT_NE(header.find(R"("a.bf16":{"dtype":"BF16","shape":[2],"data_offsets":[20,24]})"), std::string::npos) << header;
  // Serialising what was read gives the same bytes.
  EXPECT_EQ(serialize_safetensors(back), bytes);
}

// The view parser returns what the copying one copies, in place: every view inside the given
// bytes at its tensor's offset, at any alignment of the buffer.
TEST(Safetensors, ViewsPointIntoTheParsedBytes) {
  SafetensorsFile f;
  f.metadata["format"] = "pt";
  f.tensors["b.f16"] = u16_tensor(DType::F16, {0x3c00, 0xc000, 0x7bff});
  f.tensors["z.f32"] = f32_tensor({2, 2}, {1.5f, -2.0f, 3.25f, 0.0f});
  f.tensors["x.empty"] = f32_tensor({0, 3}, {});
  const std::string bytes = serialize_safetensors(f);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  for (size_t shift : {0, 1, 3}) {
    const std::string buffer = std::string(shift, '#') + bytes;
    const std::string_view in = std::string_view(buffer).substr(shift);
    const SafetensorsView v = parse_safetensors_view(in, "v");
    EXPECT_EQ(v.metadata, f.metadata);
    ASSERT_EQ(v.tensors.size(), f.tensors.size());
    for (const auto& [name, t] : f.tensors) {
      const TensorView& tv = v.tensors.at(name);
      EXPECT_EQ(tv.dtype, t.dtype) << name;
      EXPECT_EQ(tv.shape, t.shape) << name;
      EXPECT_EQ(tv.data, t.data) << name;
      EXPECT_EQ(tv.numel(), t.numel()) << name;
      EXPECT_GE(tv.data.data(), in.data() + 8 + n) << name << " does not point into the data buffer";
      EXPECT_LE(tv.data.data() + tv.data.size(), in.data() + in.size()) << name;
      EXPECT_EQ(to_float32(tv, name), to_float32(t, name)) << name;
    }
  }
}

TEST(Safetensors, WriteAndReadFile) {
  std::string dir = (std::filesystem::temp_directory_path() / ("lorazip_st_" + std::to_string(::getpid()))).string();
  std::filesystem::create_directories(dir);
  SafetensorsFile f;
  f.tensors["w"] = f32_tensor({3}, {1, 2, 3});
  write_safetensors(dir + "/w.safetensors", f);
  SafetensorsFile back = read_safetensors(dir + "/w.safetensors");
  EXPECT_EQ(back.tensors.at("w").data, f.tensors["w"].data);
  std::filesystem::remove_all(dir);
  EXPECT_THROW(read_safetensors(dir + "/missing.safetensors"), std::runtime_error);
}

TEST(Safetensors, HalfAndBfloat16WidenExactly) {
  RawTensor h = u16_tensor(DType::F16, {0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x8000, 0x7c00, 0xfc00, 0x7e00,
                                        0x3555});
  std::vector<float> v = to_float32(h, "h");
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], -2.0f);
  EXPECT_EQ(v[2], 65504.0f);
  EXPECT_EQ(v[3], std::ldexp(1.0f, -24));                 // smallest subnormal
  EXPECT_EQ(v[4], std::ldexp(1023.0f, -24));              // largest subnormal
  EXPECT_EQ(v[5], std::ldexp(1.0f, -14));                 // smallest normal
  EXPECT_TRUE(v[6] == 0.0f && std::signbit(v[6]));        // -0
  EXPECT_EQ(v[7], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[8], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(v[9]));
  EXPECT_EQ(v[10], 0.333251953125f);  // 0x3555, the half nearest 1/3

  RawTensor b = u16_tensor(DType::BF16, {0x3f80, 0x4049, 0xff80, 0x0001});
  std::vector<float> w = to_float32(b, "b");
  EXPECT_EQ(w[0], 1.0f);
  EXPECT_EQ(w[1], 3.140625f);
  EXPECT_EQ(w[2], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(w[3], std::ldexp(1.0f, -133));  // bf16 subnormal

  RawTensor i = u16_tensor(DType::I16, {1});
  EXPECT_THROW(to_float32(i, "ints"), std::runtime_error);
}

TEST(Safetensors, RefusesBadHeaderLength) {
  expect_refused(std::string("\x05\0\0", 3), {"shorter than"});
  expect_refused(u64le(1000) + "{}", {"larger than the rest of the file"});
  expect_refused(u64le(200000000) + "{}", {"100000000"});
  expect_refused(u64le(2) + "[]", {"'{'"});
}

TEST(Safetensors, RefusesInvalidJson) {
  expect_refused(make_file(R"({"a":{"dtype":"F32",)", 0), {"not valid JSON"});
  expect_refused(make_file("{\"a\xff\":1}", 0), {"not valid JSON"});
}

TEST(Safetensors, RefusesUnknownDtype) {
  expect_refused(make_file(R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2), {"'w'", "F8_E4M3"});
}

TEST(Safetensors, RefusesOverlappingOffsets) {
  expect_refused(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           12),
                 {"'b'", "overlapping", "'a'"});
}

TEST(Safetensors, RefusesOutOfRangeOffsets) {
  expect_refused(make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8), {"'a'", "past the data buffer"});
  expect_refused(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8), {"'a'", "end before begin"});
}

TEST(Safetensors, RefusesGapsAndUncoveredBuffer) {
  expect_refused(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                           12),
                 {"'b'", "gap"});
  expect_refused(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8), {"'a'", "gap"});
  expect_refused(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8), {"trailing bytes"});
}

TEST(Safetensors, RefusesSizeMismatch) {
  expect_refused(make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), {"'a'", "needs 12"});
  expect_refused(make_file(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4), {"'a'"});
}

TEST(Safetensors, RefusesDuplicateNames) {
  expect_refused(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                           8),
                 {"'a'", "twice"});
}

TEST(Safetensors, RefusesMalformedEntriesAndMetadata) {
  expect_refused(make_file(R"({"__metadata__":{"format":1}})", 0), {"__metadata__", "format"});
  expect_refused(make_file(R"({"a":{"dtype":"F32","shape":[1]}})", 4), {"'a'", "data_offsets"});
  expect_refused(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}})", 4), {"'a'", "extra"});
  expect_refused(make_file(R"({"a":[1,2]})", 0), {"'a'"});
}

TEST(Safetensors, WriterRefusesInconsistentTensors) {
  SafetensorsFile f;
  f.tensors["w"] = f32_tensor({2, 2}, {1, 2, 3});
  EXPECT_THROW(serialize_safetensors(f), std::invalid_argument);
}

TEST(Safetensors, PythonWrittenFileReserialisesByteForByte) {
  const std::string path = std::string(LORAZIP_SHARED_DIR) + "/models/tinystories-260k-hf/model.safetensors";
  if (!file_exists(path)) GTEST_SKIP() << "../shared not found: " << path;
  std::string bytes = read_file(path);
  SafetensorsFile f = parse_safetensors(bytes, path);
  EXPECT_EQ(f.metadata.at("format"), "pt");
  EXPECT_EQ(f.tensors.at("model.embed_tokens.weight").shape, (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(serialize_safetensors(f), bytes);
}
