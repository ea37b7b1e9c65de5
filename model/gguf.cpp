// GGUF reader, dequantizer and writer (see gguf.h). The reader checks every count and length
// against the bytes that remain before reading, does offset arithmetic with overflow checks, and
// requires the data section to hold every tensor padded to the alignment (as ggml's loader does).
// Dequantization is the engine's (codec/engine/blocks.h), the one in lorazip.
#include "model/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <stdexcept>

#include "codec/engine/blocks.h"
#include "common/fs.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lorazip's GGUF code assumes a little-endian host"
#endif

namespace lorazip {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kDefaultAlignment = 32;
constexpr int kMaxArrayDepth = 8;         // arrays of arrays nest at most this deep
constexpr uint32_t kMaxDims = 4;

// Types and sizes as ggml defines them (ggml.c type_traits; the gguf package's GGML_QUANT_SIZES).
const GgmlTypeTraits kTypes[] = {
    {0, "F32", 1, 4},         {1, "F16", 1, 2},        {2, "Q4_0", 32, 18},     {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},      {7, "Q5_1", 32, 24},     {8, "Q8_0", 32, 34},     {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},    {11, "Q3_K", 256, 110},  {12, "Q4_K", 256, 144},  {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},   {15, "Q8_K", 256, 292},  {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74},
    {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},  {20, "IQ4_NL", 32, 18},  {21, "IQ3_S", 256, 110},
    {22, "IQ2_S", 256, 82},   {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},       {25, "I16", 1, 2},
    {26, "I32", 1, 4},        {27, "I64", 1, 8},       {28, "F64", 1, 8},       {29, "IQ1_M", 256, 56},
    {30, "BF16", 1, 2},       {34, "TQ1_0", 256, 54},  {35, "TQ2_0", 256, 66},  {39, "MXFP4", 32, 17},
};

// Smallest encoding of a value of each type, to bound element counts by the bytes present.
uint64_t min_value_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::BOOL: return 1;
    case GgufValueType::U16: case GgufValueType::I16: return 2;
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::F32: return 4;
    case GgufValueType::U64: case GgufValueType::I64: case GgufValueType::F64: return 8;
    case GgufValueType::STRING: return 8;
    case GgufValueType::ARRAY: return 12;
  }
  return 1;
}

bool valid_value_type(uint32_t t) { return t <= 12; }
bool is_unsigned(GgufValueType t) {
  return t == GgufValueType::U8 || t == GgufValueType::U16 || t == GgufValueType::U32 || t == GgufValueType::U64;
}
bool is_signed(GgufValueType t) {
  return t == GgufValueType::I8 || t == GgufValueType::I16 || t == GgufValueType::I32 || t == GgufValueType::I64;
}

[[noreturn]] void fail(const std::string& file, const std::string& msg) {
  throw std::runtime_error("GGUF file '" + file + "': " + msg);
}

// Bounded little-endian reads over the file's bytes.
class Cursor {
 public:
  Cursor(const uint8_t* p, uint64_t n, const std::string& file) : p_(p), n_(n), file_(file) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return n_ - pos_; }
  void need(uint64_t k, const std::string& what) const {
    if (k > remaining())
      fail(file_, "truncated: " + what + " needs " + std::to_string(k) + " bytes at offset " + std::to_string(pos_) +
                      " but only " + std::to_string(remaining()) + " remain");
  }
  template <class T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what) {
    const uint64_t len = read<uint64_t>(what + " (length)");
    if (len > remaining())
      fail(file_, what + ": string length " + std::to_string(len) + " at offset " + std::to_string(pos_ - 8) +
                      " exceeds the " + std::to_string(remaining()) + " bytes left in the file");
    std::string s(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(len));
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* p_;
  uint64_t n_;
  uint64_t pos_ = 0;
  const std::string& file_;
};

GgufValue read_value(Cursor& c, GgufValueType type, const std::string& what, int depth, const std::string& file) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufValueType::U8: v.u = c.read<uint8_t>(what); break;
    case GgufValueType::I8: v.i = c.read<int8_t>(what); break;
    case GgufValueType::U16: v.u = c.read<uint16_t>(what); break;
    case GgufValueType::I16: v.i = c.read<int16_t>(what); break;
    case GgufValueType::U32: v.u = c.read<uint32_t>(what); break;
    case GgufValueType::I32: v.i = c.read<int32_t>(what); break;
    case GgufValueType::U64: v.u = c.read<uint64_t>(what); break;
    case GgufValueType::I64: v.i = c.read<int64_t>(what); break;
    case GgufValueType::F32: v.f = c.read<float>(what); break;
    case GgufValueType::F64: v.f = c.read<double>(what); break;
    case GgufValueType::BOOL: {
      const uint8_t b = c.read<uint8_t>(what);
      if (b > 1) fail(file, what + ": bool value " + std::to_string(b) + " is neither 0 nor 1");
      v.u = b;
      break;
    }
    case GgufValueType::STRING: v.s = c.read_string(what); break;
    case GgufValueType::ARRAY: {
      if (depth >= kMaxArrayDepth)
        fail(file, what + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
      const uint32_t et = c.read<uint32_t>(what + " (array element type)");
      if (!valid_value_type(et))
        fail(file, what + ": unknown array element type " + std::to_string(et) + " (valid types are 0..12)");
      v.elem_type = static_cast<GgufValueType>(et);
      const uint64_t count = c.read<uint64_t>(what + " (array length)");
      if (count > c.remaining() / min_value_size(v.elem_type))
        fail(file, what + ": array of " + std::to_string(count) + " " + gguf_value_type_name(v.elem_type) +
                       " values cannot fit in the " + std::to_string(c.remaining()) + " bytes left in the file");
      v.array.reserve(static_cast<size_t>(count));
      for (uint64_t k = 0; k < count; ++k)
        v.array.push_back(read_value(c, v.elem_type, what + "[" + std::to_string(k) + "]", depth + 1, file));
      break;
    }
  }
  return v;
}

uint64_t align_up(uint64_t x, uint64_t a, bool& overflow) {
  const uint64_t r = x % a;
  if (r == 0) return x;
  if (x > std::numeric_limits<uint64_t>::max() - (a - r)) {
    overflow = true;
    return 0;
  }
  return x + (a - r);
}

std::string key_type_error(const std::string& file, const std::string& key, const GgufValue& v, const char* want) {
  std::string got = gguf_value_type_name(v.type);
  if (v.type == GgufValueType::ARRAY) got = std::string("array of ") + gguf_value_type_name(v.elem_type);
  return "GGUF file '" + file + "': metadata key '" + key + "' has type " + got + ", expected " + want;
}

// Integer value of a scalar, or false when it is not an integer type.
bool as_int(const GgufValue& v, bool& neg, uint64_t& mag) {
  if (is_unsigned(v.type)) {
    neg = false;
    mag = v.u;
    return true;
  }
  if (is_signed(v.type)) {
    neg = v.i < 0;
    mag = neg ? (uint64_t{0} - static_cast<uint64_t>(v.i)) : static_cast<uint64_t>(v.i);
    return true;
  }
  return false;
}

template <class T>
T int_in_range(const GgufValue& v, const std::string& file, const std::string& key, const char* want) {
  bool neg = false;
  uint64_t mag = 0;
  if (!as_int(v, neg, mag)) throw std::runtime_error(key_type_error(file, key, v, want));
  const bool fits = neg ? (std::numeric_limits<T>::is_signed &&
                           mag <= static_cast<uint64_t>(std::numeric_limits<T>::max()) + 1)
                        : mag <= static_cast<uint64_t>(std::numeric_limits<T>::max());
  if (!fits)
    throw std::runtime_error("GGUF file '" + file + "': metadata key '" + key + "' value " + (neg ? "-" : "") +
                             std::to_string(mag) + " does not fit in " + want);
  if (neg) return static_cast<T>(-static_cast<int64_t>(mag - 1) - 1);
  return static_cast<T>(mag);
}

void append_u32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void append_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }
void append_string(std::string& out, const std::string& s) {
  append_u64(out, s.size());
  out += s;
}

void append_value(std::string& out, const GgufValue& v) {
  switch (v.type) {
    case GgufValueType::U8: out.push_back(static_cast<char>(static_cast<uint8_t>(v.u))); break;
    case GgufValueType::I8: out.push_back(static_cast<char>(static_cast<int8_t>(v.i))); break;
    case GgufValueType::BOOL: out.push_back(v.u ? 1 : 0); break;
    case GgufValueType::U16: { uint16_t x = static_cast<uint16_t>(v.u); out.append(reinterpret_cast<const char*>(&x), 2); break; }
    case GgufValueType::I16: { int16_t x = static_cast<int16_t>(v.i); out.append(reinterpret_cast<const char*>(&x), 2); break; }
    case GgufValueType::U32: append_u32(out, static_cast<uint32_t>(v.u)); break;
    case GgufValueType::I32: { int32_t x = static_cast<int32_t>(v.i); out.append(reinterpret_cast<const char*>(&x), 4); break; }
    case GgufValueType::U64: append_u64(out, v.u); break;
    case GgufValueType::I64: out.append(reinterpret_cast<const char*>(&v.i), 8); break;
    case GgufValueType::F32: { float x = static_cast<float>(v.f); out.append(reinterpret_cast<const char*>(&x), 4); break; }
    case GgufValueType::F64: out.append(reinterpret_cast<const char*>(&v.f), 8); break;
    case GgufValueType::STRING: append_string(out, v.s); break;
    case GgufValueType::ARRAY:
      append_u32(out, static_cast<uint32_t>(v.elem_type));
      append_u64(out, v.array.size());
      for (const GgufValue& e : v.array) {
        if (e.type != v.elem_type)
          throw std::invalid_argument(std::string("GgufWriter: array of ") + gguf_value_type_name(v.elem_type) +
                                      " holds a " + gguf_value_type_name(e.type) + " element");
        append_value(out, e);
      }
      break;
  }
}

// numel and byte size of a tensor of ggml type `t`, or an error message.
std::string tensor_size(const std::vector<int64_t>& ne, const GgmlTypeTraits& t, int64_t& numel, uint64_t& nbytes) {
  uint64_t n = 1;
  for (size_t i = 0; i < ne.size(); ++i) {
    if (ne[i] < 0) return "dimension " + std::to_string(i) + " is negative (" + std::to_string(ne[i]) + ")";
    const uint64_t d = static_cast<uint64_t>(ne[i]);
    if (d != 0 && n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / d)
      return "element count overflows (shape too large)";
    n *= d;
  }
  if (!ne.empty() && ne[0] % t.block_size != 0)
    return "row length ne[0] = " + std::to_string(ne[0]) + " is not a multiple of " + t.name + "'s block size " +
           std::to_string(t.block_size);
  const uint64_t blocks = n / t.block_size;
  if (blocks > std::numeric_limits<uint64_t>::max() / t.type_size) return "byte size overflows (shape too large)";
  numel = static_cast<int64_t>(n);
  nbytes = blocks * t.type_size;
  return "";
}

}  // namespace

const char* gguf_value_type_name(GgufValueType t) {
  switch (t) {
    case GgufValueType::U8: return "u8";
    case GgufValueType::I8: return "i8";
    case GgufValueType::U16: return "u16";
    case GgufValueType::I16: return "i16";
    case GgufValueType::U32: return "u32";
    case GgufValueType::I32: return "i32";
    case GgufValueType::F32: return "f32";
    case GgufValueType::BOOL: return "bool";
    case GgufValueType::STRING: return "string";
    case GgufValueType::ARRAY: return "array";
    case GgufValueType::U64: return "u64";
    case GgufValueType::I64: return "i64";
    case GgufValueType::F64: return "f64";
  }
  return "invalid";
}

const GgmlTypeTraits* ggml_type_traits(uint32_t id) {
  for (const auto& t : kTypes)
    if (t.id == id) return &t;
  return nullptr;
}

std::string ggml_type_label(uint32_t id) {
  const GgmlTypeTraits* t = ggml_type_traits(id);
  return std::string(t ? t->name : "unknown") + " (type " + std::to_string(id) + ")";
}

bool ggml_can_dequantize(uint32_t id) {
  engine::WeightKind k;
  return engine::kind_from_ggml(id, &k);
}

std::string ggml_dequantizable_types() {
  std::string out;
  for (int k = 0; k < engine::kWeightKinds; ++k)
    out += std::string(k ? ", " : "") + engine::kind_name(static_cast<engine::WeightKind>(k));
  return out;
}

GgufValue GgufValue::of_string(std::string v) {
  GgufValue x;
  x.type = GgufValueType::STRING;
  x.s = std::move(v);
  return x;
}
GgufValue GgufValue::of_u32(uint32_t v) {
  GgufValue x;
  x.type = GgufValueType::U32;
  x.u = v;
  return x;
}
GgufValue GgufValue::of_i32(int32_t v) {
  GgufValue x;
  x.type = GgufValueType::I32;
  x.i = v;
  return x;
}
GgufValue GgufValue::of_u64(uint64_t v) {
  GgufValue x;
  x.type = GgufValueType::U64;
  x.u = v;
  return x;
}
GgufValue GgufValue::of_f32(float v) {
  GgufValue x;
  x.type = GgufValueType::F32;
  x.f = v;
  return x;
}
GgufValue GgufValue::of_bool(bool v) {
  GgufValue x;
  x.type = GgufValueType::BOOL;
  x.u = v ? 1 : 0;
  return x;
}
GgufValue GgufValue::of_array(GgufValueType elem_type, std::vector<GgufValue> elems) {
  GgufValue x;
  x.type = GgufValueType::ARRAY;
  x.elem_type = elem_type;
  x.array = std::move(elems);
  return x;
}
GgufValue GgufValue::of_string_array(const std::vector<std::string>& v) {
  std::vector<GgufValue> e;
  e.reserve(v.size());
  for (const auto& s : v) e.push_back(of_string(s));
  return of_array(GgufValueType::STRING, std::move(e));
}
GgufValue GgufValue::of_i32_array(const std::vector<int32_t>& v) {
  std::vector<GgufValue> e;
  e.reserve(v.size());
  for (int32_t x : v) e.push_back(of_i32(x));
  return of_array(GgufValueType::I32, std::move(e));
}
GgufValue GgufValue::of_f32_array(const std::vector<float>& v) {
  std::vector<GgufValue> e;
  e.reserve(v.size());
  for (float x : v) e.push_back(of_f32(x));
  return of_array(GgufValueType::F32, std::move(e));
}

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

std::vector<int64_t> GgufTensorInfo::shape() const { return std::vector<int64_t>(ne.rbegin(), ne.rend()); }

// The file's bytes: a read-only private mapping, or a string held in memory.
struct GgufFile::Storage {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  std::string owned;
  void* map = nullptr;
  size_t map_len = 0;
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage() {
    if (map) ::munmap(map, map_len);
  }
};

uint64_t GgufFile::file_size() const { return storage_->size; }
const uint8_t* GgufFile::map_base() const { return storage_->data; }

GgufFile GgufFile::open(const std::string& path) {
  auto st = std::make_shared<Storage>();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("GGUF file '" + path + "': cannot open: " + std::strerror(errno));
  struct stat sb;
  if (::fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    ::close(fd);
    throw std::runtime_error("GGUF file '" + path + "': not a regular file");
  }
  if (sb.st_size > 0) {
    void* m = ::mmap(nullptr, static_cast<size_t>(sb.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      throw std::runtime_error("GGUF file '" + path + "': cannot memory-map: " + std::strerror(e));
    }
    st->map = m;
    st->map_len = static_cast<size_t>(sb.st_size);
    st->data = static_cast<const uint8_t*>(m);
    st->size = static_cast<uint64_t>(sb.st_size);
  }
  ::close(fd);
  GgufFile f;
  f.storage_ = st;
  f.name_ = path;
  f.parse_all();
  return f;
}

GgufFile GgufFile::parse(std::string bytes, const std::string& name) {
  auto st = std::make_shared<Storage>();
  st->owned = std::move(bytes);
  st->data = reinterpret_cast<const uint8_t*>(st->owned.data());
  st->size = st->owned.size();
  GgufFile f;
  f.storage_ = st;
  f.name_ = name;
  f.parse_all();
  return f;
}

void GgufFile::parse_all() {
  const std::string& file = name_;
  Cursor c(storage_->data, storage_->size, file);
  if (storage_->size < 4) fail(file, "too short to be a GGUF file (" + std::to_string(storage_->size) + " bytes)");
  const uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) fail(file, "bad magic (the file does not start with \"GGUF\"; not a GGUF file)");
  version_ = c.read<uint32_t>("version");
  if (version_ == 1) fail(file, "GGUF version 1 is not supported (re-convert the model with a current llama.cpp)");
  if (version_ != 2 && version_ != 3)
    fail(file, "unsupported GGUF version " + std::to_string(version_) +
                   " (lorazip reads versions 2 and 3; a big-endian file also shows up here)");
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  constexpr uint64_t kMinKv = 8 + 4 + 1, kMinTensor = 8 + 4 + 8 + 4 + 8;
  if (n_kv > c.remaining() / kMinKv)
    fail(file, "metadata count " + std::to_string(n_kv) + " cannot fit in the " + std::to_string(c.remaining()) +
                   " bytes left after the header");
  if (n_tensors > c.remaining() / kMinTensor)
    fail(file, "tensor count " + std::to_string(n_tensors) + " cannot fit in the " + std::to_string(c.remaining()) +
                   " bytes left after the header");

  for (uint64_t k = 0; k < n_kv; ++k) {
    const std::string what = "metadata entry " + std::to_string(k);
    std::string key = c.read_string(what + " key");
    const uint32_t t = c.read<uint32_t>("type of metadata key '" + key + "'");
    if (!valid_value_type(t))
      fail(file, "metadata key '" + key + "' has unknown value type " + std::to_string(t) + " (valid types are 0..12)");
    GgufValue v = read_value(c, static_cast<GgufValueType>(t), "metadata key '" + key + "'", 0, file);
    if (kv_index_.count(key)) fail(file, "duplicate metadata key '" + key + "'");
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), std::move(v));
  }

  alignment_ = kDefaultAlignment;
  if (const GgufValue* a = find("general.alignment")) {
    if (!is_unsigned(a->type) && !is_signed(a->type))
      throw std::runtime_error(key_type_error(file, "general.alignment", *a, "an integer"));
    const uint32_t al = get_u32("general.alignment");
    if (al == 0 || (al & (al - 1)) != 0)
      fail(file, "general.alignment = " + std::to_string(al) + " is not a power of two");
    alignment_ = al;
  }

  if (n_tensors > c.remaining() / kMinTensor)
    fail(file, "tensor count " + std::to_string(n_tensors) + " cannot fit in the " + std::to_string(c.remaining()) +
                   " bytes left after the metadata");
  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo ti;
    ti.name = c.read_string("tensor info " + std::to_string(k) + " name");
    const std::string tn = "tensor '" + ti.name + "'";
    if (ti.name.empty()) fail(file, "tensor info " + std::to_string(k) + " has an empty name");
    if (tensor_index_.count(ti.name)) fail(file, "duplicate " + tn);
    const uint32_t n_dims = c.read<uint32_t>(tn + " n_dims");
    if (n_dims < 1 || n_dims > kMaxDims)
      fail(file, tn + ": n_dims = " + std::to_string(n_dims) + " is not in 1.." + std::to_string(kMaxDims));
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t e = c.read<uint64_t>(tn + " ne[" + std::to_string(d) + "]");
      if (e > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(file, tn + ": ne[" + std::to_string(d) + "] = " + std::to_string(e) + " is out of range");
      ti.ne.push_back(static_cast<int64_t>(e));
    }
    ti.type = c.read<uint32_t>(tn + " type");
    const GgmlTypeTraits* tt = ggml_type_traits(ti.type);
    if (!tt) fail(file, tn + " has unknown ggml type " + std::to_string(ti.type));
    int64_t numel = 0;
    const std::string err = tensor_size(ti.ne, *tt, numel, ti.nbytes);
    if (!err.empty()) fail(file, tn + " (" + ggml_type_label(ti.type) + "): " + err);
    ti.offset = c.read<uint64_t>(tn + " offset");
    if (ti.offset % alignment_ != 0)
      fail(file, tn + ": data offset " + std::to_string(ti.offset) + " is not a multiple of the alignment " +
                     std::to_string(alignment_) + " (misaligned)");
    tensor_index_.emplace(ti.name, tensors_.size());
    tensors_.push_back(std::move(ti));
  }

  bool overflow = false;
  data_offset_ = align_up(c.pos(), alignment_, overflow);
  if (tensors_.empty()) {
    if (overflow || data_offset_ > storage_->size) data_offset_ = storage_->size;  // no data section needed
    return;
  }
  if (overflow || data_offset_ > storage_->size)
    fail(file, "truncated: the data section would start at offset " + (overflow ? std::string("beyond 2^64") : std::to_string(data_offset_)) +
                   " but the file has " + std::to_string(storage_->size) + " bytes");
  const uint64_t data_size = storage_->size - data_offset_;
  // Every tensor inside the data section, none overlapping, each padded to the alignment.
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& t : tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail(file, "tensor '" + t.name + "': data [" + std::to_string(t.offset) + ", +" + std::to_string(t.nbytes) +
                     ") lies outside the " + std::to_string(data_size) + "-byte data section (truncated file or bad offset)");
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  uint64_t end = 0;
  for (size_t k = 0; k < by_offset.size(); ++k) {
    const GgufTensorInfo& t = *by_offset[k];
    if (k > 0 && t.offset < end)
      fail(file, "tensor '" + t.name + "' overlaps tensor '" + by_offset[k - 1]->name + "' in the data section");
    end = t.offset + t.nbytes;
  }
  const uint64_t padded_end = align_up(end, alignment_, overflow);
  if (overflow || padded_end > data_size)
    fail(file, "truncated: the data section holds " + std::to_string(data_size) + " bytes but its tensors need " +
                   std::to_string(padded_end) + " (padded to the alignment " + std::to_string(alignment_) + ")");
}

bool GgufFile::has(const std::string& key) const { return kv_index_.count(key) != 0; }

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufValue& GgufFile::get(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) fail(name_, "metadata key '" + key + "' is missing");
  return *v;
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::STRING) throw std::runtime_error(key_type_error(name_, key, v, "string"));
  return v.s;
}
uint32_t GgufFile::get_u32(const std::string& key) const { return int_in_range<uint32_t>(get(key), name_, key, "u32"); }
int32_t GgufFile::get_i32(const std::string& key) const { return int_in_range<int32_t>(get(key), name_, key, "i32"); }
uint64_t GgufFile::get_u64(const std::string& key) const { return int_in_range<uint64_t>(get(key), name_, key, "u64"); }
int64_t GgufFile::get_i64(const std::string& key) const { return int_in_range<int64_t>(get(key), name_, key, "i64"); }

double GgufFile::get_f64(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::F32 && v.type != GgufValueType::F64)
    throw std::runtime_error(key_type_error(name_, key, v, "f32 or f64"));
  return v.f;
}
float GgufFile::get_f32(const std::string& key) const { return static_cast<float>(get_f64(key)); }

bool GgufFile::get_bool(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::BOOL) throw std::runtime_error(key_type_error(name_, key, v, "bool"));
  return v.u != 0;
}

uint64_t GgufFile::array_size(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::ARRAY) throw std::runtime_error(key_type_error(name_, key, v, "an array"));
  return v.array.size();
}

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::ARRAY || v.elem_type != GgufValueType::STRING)
    throw std::runtime_error(key_type_error(name_, key, v, "array of string"));
  std::vector<std::string> out;
  out.reserve(v.array.size());
  for (const auto& e : v.array) out.push_back(e.s);
  return out;
}

std::vector<int32_t> GgufFile::get_i32_array(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::ARRAY || !(is_signed(v.elem_type) || is_unsigned(v.elem_type)))
    throw std::runtime_error(key_type_error(name_, key, v, "array of i32"));
  std::vector<int32_t> out;
  out.reserve(v.array.size());
  for (size_t k = 0; k < v.array.size(); ++k)
    out.push_back(int_in_range<int32_t>(v.array[k], name_, key + "[" + std::to_string(k) + "]", "i32"));
  return out;
}

std::vector<uint32_t> GgufFile::get_u32_array(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::ARRAY || !(is_signed(v.elem_type) || is_unsigned(v.elem_type)))
    throw std::runtime_error(key_type_error(name_, key, v, "array of u32"));
  std::vector<uint32_t> out;
  out.reserve(v.array.size());
  for (size_t k = 0; k < v.array.size(); ++k)
    out.push_back(int_in_range<uint32_t>(v.array[k], name_, key + "[" + std::to_string(k) + "]", "u32"));
  return out;
}

std::vector<float> GgufFile::get_f32_array(const std::string& key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufValueType::ARRAY || (v.elem_type != GgufValueType::F32 && v.elem_type != GgufValueType::F64))
    throw std::runtime_error(key_type_error(name_, key, v, "array of f32"));
  std::vector<float> out;
  out.reserve(v.array.size());
  for (const auto& e : v.array) out.push_back(static_cast<float>(e.f));
  return out;
}

std::string GgufFile::get_string_or(const std::string& key, const std::string& dflt) const {
  return has(key) ? get_string(key) : dflt;
}
uint32_t GgufFile::get_u32_or(const std::string& key, uint32_t dflt) const { return has(key) ? get_u32(key) : dflt; }
int64_t GgufFile::get_i64_or(const std::string& key, int64_t dflt) const { return has(key) ? get_i64(key) : dflt; }
float GgufFile::get_f32_or(const std::string& key, float dflt) const { return has(key) ? get_f32(key) : dflt; }
bool GgufFile::get_bool_or(const std::string& key, bool dflt) const { return has(key) ? get_bool(key) : dflt; }

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(const std::string& name) const {
  const GgufTensorInfo* t = find_tensor(name);
  if (!t) fail(name_, "tensor '" + name + "' is missing");
  return *t;
}

std::string_view GgufFile::tensor_bytes(const GgufTensorInfo& t) const {
  // parse_all() checked that [offset, offset + nbytes) lies inside the data section.
  return std::string_view(reinterpret_cast<const char*>(storage_->data + data_offset_ + t.offset), static_cast<size_t>(t.nbytes));
}

std::vector<float> GgufFile::dequantize(const GgufTensorInfo& t) const {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  dequantize_into(t, out.data());
  return out;
}

void GgufFile::dequantize_into(const GgufTensorInfo& t, float* out) const {
  const std::string_view b = tensor_bytes(t);
  ggml_dequantize(t.type, b.data(), b.size(), out, t.numel(), "GGUF file '" + name_ + "': tensor '" + t.name + "'");
}

void ggml_dequantize(uint32_t type, const void* src, size_t nbytes, float* dst, int64_t n, const std::string& what) {
  const GgmlTypeTraits* tt = ggml_type_traits(type);
  engine::WeightKind kind;
  if (!tt || !engine::kind_from_ggml(type, &kind))
    throw std::runtime_error(what + " has type " + ggml_type_label(type) + ", which lorazip does not dequantize (supported: " +
                             ggml_dequantizable_types() + "; re-quantize the model with one of these)");
  if (n < 0 || n % tt->block_size != 0)
    throw std::runtime_error(what + ": " + std::to_string(n) + " values are not whole " + tt->name + " blocks");
  const uint64_t blocks = static_cast<uint64_t>(n) / tt->block_size;
  if (blocks > std::numeric_limits<uint64_t>::max() / tt->type_size || blocks * tt->type_size != nbytes)
    throw std::runtime_error(what + ": " + std::to_string(nbytes) + " bytes do not hold " + std::to_string(n) + " " +
                             tt->name + " values");
  // A tensor's rows are whole blocks, so its bytes are one run of blocks: one call covers them all.
  engine::dequantize_row(kind, static_cast<const uint8_t*>(src), dst, n);
}

bool is_gguf_path(const std::string& path) {
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".gguf") == 0) return true;
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0 || !S_ISREG(sb.st_mode)) return false;
  std::ifstream in(path, std::ios::binary);
  char m[4] = {0, 0, 0, 0};
  in.read(m, 4);
  return in.gcount() == 4 && std::memcmp(m, "GGUF", 4) == 0;
}

void GgufWriter::set_alignment(uint32_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw std::invalid_argument("GgufWriter: alignment " + std::to_string(alignment) + " is not a power of two");
  alignment_ = alignment;
}

void GgufWriter::add(const std::string& key, GgufValue value) {
  if (key == "general.alignment")
    throw std::invalid_argument("GgufWriter: set general.alignment with set_alignment()");
  for (const auto& kv : kv_)
    if (kv.first == key) throw std::invalid_argument("GgufWriter: duplicate metadata key '" + key + "'");
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(const std::string& name, const std::vector<int64_t>& ne, uint32_t type, std::string bytes) {
  const GgmlTypeTraits* tt = ggml_type_traits(type);
  if (!tt) throw std::invalid_argument("GgufWriter: tensor '" + name + "' has unknown ggml type " + std::to_string(type));
  if (name.empty()) throw std::invalid_argument("GgufWriter: a tensor needs a name");
  if (ne.empty() || ne.size() > kMaxDims)
    throw std::invalid_argument("GgufWriter: tensor '" + name + "' has " + std::to_string(ne.size()) + " dimensions (1..4 allowed)");
  for (const auto& t : tensors_)
    if (t.name == name) throw std::invalid_argument("GgufWriter: duplicate tensor '" + name + "'");
  int64_t numel = 0;
  uint64_t nbytes = 0;
  const std::string err = tensor_size(ne, *tt, numel, nbytes);
  if (!err.empty()) throw std::invalid_argument("GgufWriter: tensor '" + name + "': " + err);
  if (bytes.size() != nbytes)
    throw std::invalid_argument("GgufWriter: tensor '" + name + "' (" + ggml_type_label(type) + ") needs " +
                                std::to_string(nbytes) + " bytes, got " + std::to_string(bytes.size()));
  tensors_.push_back({name, ne, type, std::move(bytes)});
}

void GgufWriter::add_f32_tensor(const std::string& name, const std::vector<int64_t>& ne, const float* values) {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  add_tensor(name, ne, ggml_type::F32, std::string(reinterpret_cast<const char*>(values), static_cast<size_t>(n) * 4));
}

std::string GgufWriter::serialize() const {
  std::string out;
  append_u32(out, kMagic);
  append_u32(out, 3);
  append_u64(out, tensors_.size());
  append_u64(out, kv_.size() + (alignment_ != kDefaultAlignment ? 1 : 0));
  if (alignment_ != kDefaultAlignment) {
    append_string(out, "general.alignment");
    append_u32(out, static_cast<uint32_t>(GgufValueType::U32));
    append_u32(out, alignment_);
  }
  for (const auto& kv : kv_) {
    append_string(out, kv.first);
    append_u32(out, static_cast<uint32_t>(kv.second.type));
    append_value(out, kv.second);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    append_string(out, t.name);
    append_u32(out, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) append_u64(out, static_cast<uint64_t>(d));
    append_u32(out, t.type);
    append_u64(out, offset);
    offset += (t.bytes.size() + alignment_ - 1) / alignment_ * alignment_;
  }
  // Every tensor, the last one included, is padded to the alignment (ggml's loader reads the
  // padded size).
  out.resize((out.size() + alignment_ - 1) / alignment_ * alignment_, '\0');
  for (const auto& t : tensors_) {
    out += t.bytes;
    out.resize((out.size() + alignment_ - 1) / alignment_ * alignment_, '\0');
  }
  return out;
}

void GgufWriter::write(const std::string& path) const { write_file_atomic(path, serialize()); }

}  // namespace lorazip
