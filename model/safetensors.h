// safetensors reader and writer, torch-free, following the format's specification:
// 8-byte little-endian header length N, N bytes of JSON ({"name": {"dtype", "shape",
// "data_offsets": [begin, end)}, ..., "__metadata__": {str: str}}), then the packed byte buffer.
// The writer orders tensors by dtype alignment (descending) then name, writes compact JSON padded
// with spaces to a multiple of 8 (byte-identical to the reference implementation).
// The reader rejects: a header length larger than the file or over 100,000,000 bytes, invalid JSON,
// unknown dtypes, offsets out of range / overlapping / not contiguous / not covering the buffer,
// (end-begin) != numel * dtype size, duplicate names; each error names the file and the tensor.
// parse_safetensors_view is the one parser: it checks the bytes and returns views into them;
// parse_safetensors / read_safetensors copy each tensor's bytes out of those views.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace lorazip {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };
const char* dtype_name(DType d);          // "F32", ...
DType dtype_from_name(const std::string& s, const std::string& where);  // std::runtime_error if unknown
size_t dtype_size(DType d);

struct RawTensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::string data;  // little-endian row-major bytes, size == numel * dtype_size
  int64_t numel() const;
};

struct SafetensorsFile {
  std::map<std::string, RawTensor> tensors;
  std::map<std::string, std::string> metadata;
};

// A tensor seen where the file's bytes hold it: `data` points into the buffer given to
// parse_safetensors_view (which must outlive the view) at any alignment, so its values are read
// with memcpy, never through a typed pointer.
struct TensorView {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::string_view data;  // little-endian row-major bytes, size == numel * dtype_size
  int64_t numel() const;
};

struct SafetensorsView {
  std::map<std::string, TensorView> tensors;
  std::map<std::string, std::string> metadata;
};

// Checks a whole file's bytes (the rules above) and returns its tensors in place, nothing copied;
// `name` names the file in errors (std::runtime_error).
SafetensorsView parse_safetensors_view(std::string_view bytes, const std::string& name);
// The same checks and messages, each tensor's bytes copied out.
SafetensorsFile read_safetensors(const std::string& path);
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& name);
std::string serialize_safetensors(const SafetensorsFile& f);
void write_safetensors(const std::string& path, const SafetensorsFile& f);  // atomic

// IEEE binary16 and bfloat16 bit patterns -> float, exact for every value (engine::f16_to_f32 and
// engine::bf16_to_f32).
float half_to_float(uint16_t h);
float bf16_to_float(uint16_t b);

// Conversions to float32 values (F32 / F16 / BF16 / F64 sources); std::runtime_error naming the
// tensor for any other dtype.
std::vector<float> to_float32(const TensorView& t, const std::string& name);
std::vector<float> to_float32(const RawTensor& t, const std::string& name);

}  // namespace lorazip
