// GGUF, llama.cpp's model file: a torch-free reader (versions 2 and 3; memory-mapped or in memory)
// with typed metadata getters, tensor infos and raw tensor bytes, dequantization to float32
// (the engine's weight kinds: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K, with
// codec/engine/blocks.h's formulas), and a writer (metadata + tensors, aligned, atomic).
// Every malformed or hostile file is refused with a std::runtime_error naming the file and the
// problem; nothing is read outside the bytes present. docs/gguf.md lists what is read and refused.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lorazip {

// Metadata value types, with the ids the file carries.
enum class GgufValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char* gguf_value_type_name(GgufValueType t);  // "u32", "string", ...; "invalid" when out of range

// ggml tensor types that lorazip dequantizes (ids as in ggml.h; the engine's WeightKind, see
// engine::kind_from_ggml). Files may hold others: they parse (their sizes are known), and
// dequantizing them is refused naming the type.
namespace ggml_type {
constexpr uint32_t F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q8_0 = 8, Q4_K = 12, Q5_K = 13, Q6_K = 14, BF16 = 30;
}
struct GgmlTypeTraits {
  uint32_t id;
  const char* name;     // "Q4_1"
  uint32_t block_size;  // elements per block; a row length (ne[0]) must be a multiple of it
  uint32_t type_size;   // bytes per block
};
const GgmlTypeTraits* ggml_type_traits(uint32_t id);  // nullptr for an id ggml does not define
std::string ggml_type_label(uint32_t id);              // "Q4_K (type 12)", "unknown (type 77)"
bool ggml_can_dequantize(uint32_t id);  // true for the engine's kinds (engine::kind_from_ggml)
// The list of types ggml_can_dequantize accepts, for messages: "F32, F16, BF16, Q8_0, ...".
std::string ggml_dequantizable_types();

// One metadata value. Integers keep their type's range: unsigned ones (and BOOL) in `u`, signed
// ones in `i`; F32 and F64 in `f`; STRING in `s`; ARRAY in `elem_type` + `array`.
struct GgufValue {
  GgufValueType type = GgufValueType::U8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0.0;
  std::string s;
  GgufValueType elem_type = GgufValueType::U8;
  std::vector<GgufValue> array;

  static GgufValue of_string(std::string v);
  static GgufValue of_u32(uint32_t v);
  static GgufValue of_i32(int32_t v);
  static GgufValue of_u64(uint64_t v);
  static GgufValue of_f32(float v);
  static GgufValue of_bool(bool v);
  static GgufValue of_array(GgufValueType elem_type, std::vector<GgufValue> elems);  // elems must have elem_type
  static GgufValue of_string_array(const std::vector<std::string>& v);
  static GgufValue of_i32_array(const std::vector<int32_t>& v);
  static GgufValue of_f32_array(const std::vector<float>& v);
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order: ne[0] is the contiguous row length (1..4 dims)
  uint32_t type = 0;        // ggml type id
  uint64_t offset = 0;      // from the start of the data section, a multiple of the alignment
  uint64_t nbytes = 0;      // ne[0] / block_size * type_size * ne[1] * ...
  int64_t numel() const;
  std::vector<int64_t> shape() const;  // row-major (torch / safetensors) order: ne reversed
};

class GgufFile {
 public:
  // Memory-maps `path` (read-only) and parses it.
  static GgufFile open(const std::string& path);
  // Parses bytes held in memory; `name` stands for the file in error messages.
  static GgufFile parse(std::string bytes, const std::string& name);

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute file offset of the data section
  uint64_t file_size() const;
  // The first byte of the file's bytes in memory (its mapping, for open()): tensor_bytes(t) lies at
  // map_base() + data_offset() + t.offset.
  const uint8_t* map_base() const;

  // Metadata, in file order. Getters throw std::runtime_error naming the file and key when the
  // key is missing or its type does not fit: integer getters accept any integer type whose value
  // is in range, float getters F32 or F64, array getters arrays whose elements fit.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  bool has(const std::string& key) const;
  const GgufValue* find(const std::string& key) const;  // nullptr when absent
  const GgufValue& get(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  uint32_t get_u32(const std::string& key) const;
  int32_t get_i32(const std::string& key) const;
  uint64_t get_u64(const std::string& key) const;
  int64_t get_i64(const std::string& key) const;
  float get_f32(const std::string& key) const;
  double get_f64(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<int32_t> get_i32_array(const std::string& key) const;
  std::vector<uint32_t> get_u32_array(const std::string& key) const;
  std::vector<float> get_f32_array(const std::string& key) const;
  uint64_t array_size(const std::string& key) const;  // element count of an array value
  // The same with a default for a missing key (a present key of the wrong type still throws).
  std::string get_string_or(const std::string& key, const std::string& dflt) const;
  uint32_t get_u32_or(const std::string& key, uint32_t dflt) const;
  int64_t get_i64_or(const std::string& key, int64_t dflt) const;
  float get_f32_or(const std::string& key, float dflt) const;
  bool get_bool_or(const std::string& key, bool dflt) const;

  // Tensor infos in file order.
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;  // nullptr when absent
  const GgufTensorInfo& tensor(const std::string& name) const;       // std::runtime_error when absent
  std::string_view tensor_bytes(const GgufTensorInfo& t) const;      // t.nbytes bytes inside the file
  // Dequantized values, numel() floats in ne order (row-major by shape()). std::runtime_error
  // naming the tensor and its type when the type is not one lorazip dequantizes.
  std::vector<float> dequantize(const GgufTensorInfo& t) const;
  void dequantize_into(const GgufTensorInfo& t, float* out) const;

 private:
  struct Storage;
  std::shared_ptr<const Storage> storage_;
  std::string name_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
  void parse_all();
};

// Decodes `n` values of ggml type `type` from `nbytes` bytes at `src` into `dst`.
// std::runtime_error naming `what` for an unsupported type, a count that is not whole blocks,
// or a byte count that does not match.
void ggml_dequantize(uint32_t type, const void* src, size_t nbytes, float* dst, int64_t n, const std::string& what);

// True for a path ending in ".gguf" or a regular file that starts with the GGUF magic.
bool is_gguf_path(const std::string& path);

// Writes GGUF version 3: the metadata in insertion order, then the tensor infos, then each
// tensor's bytes at the next multiple of the alignment (general.alignment is written when it
// is not the default 32). std::invalid_argument for a duplicate key or tensor, a byte count
// that does not match the shape and type, or an unknown type.
class GgufWriter {
 public:
  void set_alignment(uint32_t alignment);  // a power of two; default 32
  void add(const std::string& key, GgufValue value);
  void add_tensor(const std::string& name, const std::vector<int64_t>& ne, uint32_t type, std::string bytes);
  void add_f32_tensor(const std::string& name, const std::vector<int64_t>& ne, const float* values);
  std::string serialize() const;
  void write(const std::string& path) const;  // atomic (temporary sibling, fsync, rename)

 private:
  uint32_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  struct Tensor {
    std::string name;
    std::vector<int64_t> ne;
    uint32_t type;
    std::string bytes;
  };
  std::vector<Tensor> tensors_;
};

}  // namespace lorazip
