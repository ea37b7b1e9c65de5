// safetensors reader and writer (see safetensors.h for the rules). The writer's bytes equal the
// reference implementation's; the reader turns every malformed header into a std::runtime_error
// that names the file and, where there is one, the tensor.
#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "codec/engine/blocks.h"
#include "common/fs.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lorazip's safetensors code assumes a little-endian host"
#endif

namespace lorazip {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeaderSize = 100000000;  // the reference reader's MAX_HEADER_SIZE

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};
const DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
    {DType::I64, "I64", 8}, {DType::I32, "I32", 4}, {DType::I16, "I16", 2}, {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},   {DType::BOOL, "BOOL", 1},
};

const DTypeInfo& info(DType d) {
  for (const auto& i : kDTypes)
    if (i.dtype == d) return i;
  throw std::invalid_argument("unknown DType value " + std::to_string(static_cast<int>(d)));
}

// numel with overflow checks; shape entries must be non-negative.
bool checked_numel(const std::vector<int64_t>& shape, uint64_t& out) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    uint64_t u = static_cast<uint64_t>(d);
    if (u != 0 && n > std::numeric_limits<uint64_t>::max() / u) return false;
    n *= u;
  }
  out = n;
  return true;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

[[noreturn]] void fail(const std::string& file, const std::string& msg) {
  throw std::runtime_error("safetensors file '" + file + "': " + msg);
}

[[noreturn]] void fail_tensor(const std::string& file, const std::string& tensor, const std::string& msg) {
  throw std::runtime_error("safetensors file '" + file + "': tensor '" + tensor + "': " + msg);
}

uint64_t get_u64(const json& v, const std::string& file, const std::string& tensor, const char* what) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
    fail_tensor(file, tensor, std::string(what) + " must be non-negative integers, got " + v.dump());
  return v.get<uint64_t>();
}

struct Entry {
  std::string name;
  uint64_t begin, end;
};

}  // namespace

// The engine's exact conversions (codec/engine/blocks.h), the one copy in lorazip.
float half_to_float(uint16_t h) { return engine::f16_to_f32(h); }
float bf16_to_float(uint16_t b) { return engine::bf16_to_f32(b); }

const char* dtype_name(DType d) { return info(d).name; }

size_t dtype_size(DType d) { return info(d).size; }

DType dtype_from_name(const std::string& s, const std::string& where) {
  for (const auto& i : kDTypes)
    if (s == i.name) return i.dtype;
  throw std::runtime_error(where + ": unsupported dtype '" + s +
                           "' (lorazip reads F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
}

namespace {
int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}
}  // namespace

int64_t RawTensor::numel() const { return numel_of(shape); }
int64_t TensorView::numel() const { return numel_of(shape); }

SafetensorsView parse_safetensors_view(std::string_view bytes, const std::string& name) {
  if (bytes.size() < 8)
    fail(name, "file is " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  if (n > kMaxHeaderSize)
    fail(name, "header length " + std::to_string(n) + " exceeds the 100000000-byte limit (corrupt or not safetensors)");
  if (n > bytes.size() - 8)
    fail(name, "header length " + std::to_string(n) + " is larger than the rest of the file (" +
                   std::to_string(bytes.size() - 8) + " bytes); the file is truncated or not safetensors");
  const std::string_view header = bytes.substr(8, n);
  if (header.empty() || header[0] != '{') fail(name, "header does not start with '{' (not a safetensors file)");

  // Top-level duplicate names are invalid, but a JSON parser keeps the last one silently; catch
  // them while parsing.
  std::set<std::string> top_keys;
  std::string duplicate;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && depth == 1) {
      std::string k = parsed.get<std::string>();
      if (!top_keys.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(header.begin(), header.end(), cb);
  } catch (const json::exception& e) {
    fail(name, std::string("header is not valid JSON: ") + e.what());
  }
  if (!duplicate.empty()) fail_tensor(name, duplicate, "appears twice in the header");
  if (!j.is_object()) fail(name, "header is not a JSON object");

  SafetensorsView out;
  const uint64_t buffer_len = bytes.size() - 8 - n;
  std::vector<Entry> entries;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) fail(name, "__metadata__ must be an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          fail(name, "__metadata__ value for '" + m.key() + "' must be a string, got " + m.value().dump());
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) fail_tensor(name, key, "entry must be an object with dtype, shape, data_offsets");
    for (auto f = v.begin(); f != v.end(); ++f) {
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        fail_tensor(name, key, "unknown field '" + f.key() + "'");
    }
    if (!v.contains("dtype") || !v.at("dtype").is_string()) fail_tensor(name, key, "missing string field 'dtype'");
    if (!v.contains("shape") || !v.at("shape").is_array()) fail_tensor(name, key, "missing list field 'shape'");
    if (!v.contains("data_offsets") || !v.at("data_offsets").is_array() || v.at("data_offsets").size() != 2)
      fail_tensor(name, key, "missing field 'data_offsets' = [begin, end]");

    TensorView t;
    t.dtype = dtype_from_name(v.at("dtype").get<std::string>(), "safetensors file '" + name + "': tensor '" + key + "'");
    for (const json& d : v.at("shape")) {
      uint64_t u = get_u64(d, name, key, "shape entries");
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) fail_tensor(name, key, "shape entry too large");
      t.shape.push_back(static_cast<int64_t>(u));
    }
    uint64_t begin = get_u64(v.at("data_offsets")[0], name, key, "data_offsets");
    uint64_t end = get_u64(v.at("data_offsets")[1], name, key, "data_offsets");
    if (end < begin)
      fail_tensor(name, key, "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] end before begin");
    if (end > buffer_len)
      fail_tensor(name, key, "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                                 "] run past the data buffer of " + std::to_string(buffer_len) + " bytes (truncated file?)");
    uint64_t numel = 0;
    if (!checked_numel(t.shape, numel) || numel > std::numeric_limits<uint64_t>::max() / dtype_size(t.dtype))
      fail_tensor(name, key, "shape " + shape_str(t.shape) + " overflows");
    if (end - begin != numel * dtype_size(t.dtype))
      fail_tensor(name, key, "holds " + std::to_string(end - begin) + " bytes but shape " + shape_str(t.shape) + " of " +
                                 dtype_name(t.dtype) + " needs " + std::to_string(numel * dtype_size(t.dtype)));
    entries.push_back({key, begin, end});
    out.tensors.emplace(key, std::move(t));
  }

  // The tensors must tile the buffer exactly: sorted by offset, each begins where the last ended.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  std::string prev;
  for (const Entry& e : entries) {
    if (e.begin < pos)
      fail_tensor(name, e.name, "data_offsets begin at " + std::to_string(e.begin) + ", overlapping tensor '" + prev +
                                    "' which ends at " + std::to_string(pos));
    if (e.begin > pos)
      fail_tensor(name, e.name, "data_offsets begin at " + std::to_string(e.begin) + " but the previous tensor" +
                                    (prev.empty() ? "" : " '" + prev + "'") + " ends at " + std::to_string(pos) +
                                    " (gap in the data buffer)");
    pos = e.end;
    prev = e.name;
  }
  if (pos != buffer_len)
    fail(name, "tensors cover " + std::to_string(pos) + " bytes of a " + std::to_string(buffer_len) +
                   "-byte data buffer (trailing bytes not described by the header)");

  const std::string_view data = bytes.substr(8 + n);
  for (const Entry& e : entries) out.tensors[e.name].data = data.substr(e.begin, e.end - e.begin);
  return out;
}

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& name) {
  SafetensorsView v = parse_safetensors_view(bytes, name);
  SafetensorsFile out;
  out.metadata = std::move(v.metadata);
  for (auto& [key, t] : v.tensors) {
    RawTensor r;
    r.dtype = t.dtype;
    r.shape = std::move(t.shape);
    r.data.assign(t.data.data(), t.data.size());
    out.tensors.emplace(key, std::move(r));
  }
  return out;
}

SafetensorsFile read_safetensors(const std::string& path) { return parse_safetensors(read_file(path), path); }

std::string serialize_safetensors(const SafetensorsFile& f) {
  // Layout order: dtype alignment (its size) descending, then name.
  std::vector<const std::pair<const std::string, RawTensor>*> order;
  for (const auto& kv : f.tensors) {
    if (kv.first == "__metadata__") throw std::invalid_argument("safetensors: a tensor cannot be named '__metadata__'");
    uint64_t numel = 0;
    if (!checked_numel(kv.second.shape, numel))
      throw std::invalid_argument("safetensors: tensor '" + kv.first + "': invalid shape " + shape_str(kv.second.shape));
    if (kv.second.data.size() != numel * dtype_size(kv.second.dtype))
      throw std::invalid_argument("safetensors: tensor '" + kv.first + "': " + std::to_string(kv.second.data.size()) +
                                  " data bytes for shape " + shape_str(kv.second.shape) + " of " +
                                  dtype_name(kv.second.dtype));
    order.push_back(&kv);
  }
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    size_t sa = dtype_size(a->second.dtype), sb = dtype_size(b->second.dtype);
    return sa != sb ? sa > sb : a->first < b->first;
  });

  // Compact JSON written by hand: field order dtype, shape, data_offsets; __metadata__ first.
  std::string h = "{";
  bool first = true;
  if (!f.metadata.empty()) {
    h += "\"__metadata__\":{";
    bool mfirst = true;
    for (const auto& kv : f.metadata) {
      h += (mfirst ? "" : ",") + json(kv.first).dump() + ":" + json(kv.second).dump();
      mfirst = false;
    }
    h += "}";
    first = false;
  }
  uint64_t offset = 0;
  for (const auto* kv : order) {
    const RawTensor& t = kv->second;
    uint64_t end = offset + t.data.size();
    h += (first ? "" : ",") + json(kv->first).dump() + ":{\"dtype\":\"" + dtype_name(t.dtype) +
         "\",\"shape\":" + shape_str(t.shape) + ",\"data_offsets\":[" + std::to_string(offset) + "," +
         std::to_string(end) + "]}";
    first = false;
    offset = end;
  }
  h += "}";
  h.append((8 - h.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(8 + h.size() + offset);
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += h;
  for (const auto* kv : order) out += kv->second.data;
  return out;
}

void write_safetensors(const std::string& path, const SafetensorsFile& f) {
  write_file_atomic(path, serialize_safetensors(f));
}

std::vector<float> to_float32(const TensorView& t, const std::string& name) {
  const size_t n = static_cast<size_t>(t.numel());
  if (t.data.size() != n * dtype_size(t.dtype))
    throw std::invalid_argument("tensor '" + name + "': data size does not match its shape");
  std::vector<float> out(n);
  const char* p = t.data.data();
  switch (t.dtype) {
    case DType::F32:
      if (n) std::memcpy(out.data(), p, n * 4);
      break;
    case DType::F64:
      for (size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, p + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      break;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = half_to_float(h);
      }
      break;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = bf16_to_float(h);
      }
      break;
    default:
      throw std::runtime_error("tensor '" + name + "': dtype " + dtype_name(t.dtype) +
                               " is not a floating-point type (expected F32, F16, BF16 or F64)");
  }
  return out;
}

std::vector<float> to_float32(const RawTensor& t, const std::string& name) {
  return to_float32(TensorView{t.dtype, t.shape, t.data}, name);
}

}  // namespace lorazip
