// liblorazip_spm.so: SentencePiece behind a small C interface, so that lorazip's programs never
// link SentencePiece (and the protobuf copy it carries) into the same symbol space as libtorch.
// tokenizer.cpp opens this library with dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND) and looks up
// the lz_spm_* functions below; they are the only symbols this library exports.
//
// Rules of the interface: no C++ type and no exception crosses it. Strings are (pointer, length);
// buffers this library allocates are released with lz_spm_free_buffer; a failing call returns a
// non-zero code (or NULL) and sets *err to a malloc'ed message.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

// Exported by libsentencepiece but not declared in Debian's public headers: sets the minimum
// level of SentencePiece's own log lines (0 info, 1 warning, 2 error).
namespace sentencepiece {
namespace logging {
void SetMinLogLevel(int v);
}  // namespace logging
}  // namespace sentencepiece

#define LZ_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// Bumped whenever a function's signature or meaning changes; tokenizer.cpp refuses another value,
// which catches a stale liblorazip_spm.so found beside an updated program.
constexpr int kAbiVersion = 2;  // 2: lz_spm_add_dummy_prefix

// Piece kinds reported by lz_spm_piece (the values of SentencePiece's ModelProto piece types).
constexpr int kNormal = 1, kUnknown = 2, kControl = 3, kUnused = 5, kByte = 6;

void set_error(char** err, const std::string& msg) {
  if (!err) return;
  *err = static_cast<char*>(std::malloc(msg.size() + 1));
  if (*err) std::memcpy(*err, msg.c_str(), msg.size() + 1);
}

// ---- A minimal protobuf wire-format reader/writer, enough to edit one nested message. ----
// ModelProto (sentencepiece_model.proto): 1 pieces, 2 trainer_spec, 3 normalizer_spec,
// 4 self_test_data, 5 denormalizer_spec. NormalizerSpec: 1 name (string), 2 precompiled_charsmap
// (bytes), 3 add_dummy_prefix (bool, default true), 4 remove_extra_whitespaces (bool, default true),
// 5 escape_whitespaces (bool, default true), 6 normalization_rule_tsv (string).

struct WireField {
  uint32_t number = 0;
  int wire_type = 0;
  size_t begin = 0;          // offset of the tag's first byte
  size_t payload_begin = 0;  // offset of the payload (after the length prefix for wire type 2)
  size_t end = 0;            // one past the field's last byte
};

bool read_varint(const std::string& b, size_t& pos, uint64_t& out) {
  out = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= b.size()) return false;
    const uint8_t c = static_cast<uint8_t>(b[pos++]);
    out |= static_cast<uint64_t>(c & 0x7f) << shift;
    if (c < 0x80) return true;
  }
  return false;
}

void write_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Splits a serialized message into its top-level fields; throws on malformed input.
std::vector<WireField> split_fields(const std::string& b, const char* what) {
  std::vector<WireField> fields;
  size_t pos = 0;
  while (pos < b.size()) {
    WireField f;
    f.begin = pos;
    uint64_t tag = 0;
    if (!read_varint(b, pos, tag)) throw std::runtime_error(std::string("truncated tag in ") + what);
    f.number = static_cast<uint32_t>(tag >> 3);
    f.wire_type = static_cast<int>(tag & 7);
    uint64_t v = 0;
    switch (f.wire_type) {
      case 0:
        if (!read_varint(b, pos, v)) throw std::runtime_error(std::string("truncated varint in ") + what);
        f.payload_begin = f.begin;
        break;
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2:
        if (!read_varint(b, pos, v) || v > b.size() - pos)
          throw std::runtime_error(std::string("bad length-delimited field in ") + what);
        f.payload_begin = pos;
        pos += static_cast<size_t>(v);
        break;
      default:
        throw std::runtime_error(std::string("unsupported wire type ") + std::to_string(f.wire_type) +
                                 " in " + what);
    }
    if (pos > b.size()) throw std::runtime_error(std::string("truncated field in ") + what);
    f.end = pos;
    fields.push_back(f);
  }
  return fields;
}

void write_tag(std::string& out, uint32_t number, int wire_type) {
  write_varint(out, (static_cast<uint64_t>(number) << 3) | static_cast<uint64_t>(wire_type));
}

// The NormalizerSpec that keeps every byte: identity normalization (name "identity", no
// precompiled_charsmap), no dummy-prefix space, no whitespace squeezing. Every other field of the
// original spec (escape_whitespaces, ...) is kept as it was.
std::string lossless_normalizer(const std::string& spec) {
  std::string out;
  write_tag(out, 1, 2);
  write_varint(out, 8);
  out += "identity";
  write_tag(out, 3, 0);
  write_varint(out, 0);
  write_tag(out, 4, 0);
  write_varint(out, 0);
  for (const WireField& f : split_fields(spec, "NormalizerSpec")) {
    if (f.number >= 1 && f.number <= 4) continue;
    out.append(spec, f.begin, f.end - f.begin);
  }
  return out;
}

// Returns the ModelProto with its normalizer_spec (field 3) replaced by lossless_normalizer(); a
// model without one gets one appended.
std::string rewrite_model_proto(const std::string& model) {
  std::string out;
  out.reserve(model.size() + 32);
  bool seen = false;
  for (const WireField& f : split_fields(model, "ModelProto")) {
    if (f.number == 3 && f.wire_type == 2) {
      // Protobuf merges repeated occurrences of a message field; SentencePiece writes one. Keep the
      // first's other fields and drop later copies so the edited flags cannot be overridden.
      if (seen) continue;
      seen = true;
      const std::string spec = lossless_normalizer(model.substr(f.payload_begin, f.end - f.payload_begin));
      write_tag(out, 3, 2);
      write_varint(out, spec.size());
      out += spec;
    } else {
      out.append(model, f.begin, f.end - f.begin);
    }
  }
  if (!seen) {
    const std::string spec = lossless_normalizer(std::string());
    write_tag(out, 3, 2);
    write_varint(out, spec.size());
    out += spec;
  }
  return out;
}

// Drops trainer_spec.num_threads (ModelProto field 2, TrainerSpec field 16) from a trained model.
// The thread count does not change a BPE model's pieces, and leaving it in would make the file, and
// so its fingerprint, depend on the machine that trained it.
std::string drop_num_threads(const std::string& model) {
  std::string out;
  out.reserve(model.size());
  for (const WireField& f : split_fields(model, "ModelProto")) {
    if (f.number != 2 || f.wire_type != 2) {
      out.append(model, f.begin, f.end - f.begin);
      continue;
    }
    const std::string spec = model.substr(f.payload_begin, f.end - f.payload_begin);
    std::string kept;
    for (const WireField& g : split_fields(spec, "TrainerSpec"))
      if (g.number != 16) kept.append(spec, g.begin, g.end - g.begin);
    write_tag(out, 2, 2);
    write_varint(out, kept.size());
    out += kept;
  }
  return out;
}

// Feeds the trainer from memory: no temporary corpus file.
class MemorySentences : public sentencepiece::SentenceIterator {
 public:
  MemorySentences(const char* const* data, const size_t* lens, size_t n) : data_(data), lens_(lens), n_(n) {
    load();
  }
  bool done() const override { return i_ >= n_; }
  void Next() override {
    ++i_;
    load();
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  void load() {
    if (i_ < n_) value_.assign(data_[i_], lens_[i_]);
  }
  const char* const* data_;
  const size_t* lens_;
  size_t n_;
  size_t i_ = 0;
  std::string value_;
};

}  // namespace

LZ_EXPORT int lz_spm_abi_version(void) { return kAbiVersion; }

LZ_EXPORT void lz_spm_free_buffer(void* p) { std::free(p); }

// Parses a serialized ModelProto (a tokenizer.model file's bytes). With lossless_normalizer != 0
// the normalizer spec is first rewritten as described above. Returns an opaque handle, or NULL with
// *err set.
// Whether the model as trained (its own normalizer_spec, before any rewrite) adds a dummy-prefix
// space: 1 yes, 0 no, -1 when the bytes are not a parseable ModelProto. Protobuf semantics: the
// last add_dummy_prefix of the last normalizer_spec wins, and an absent field means true.
LZ_EXPORT int lz_spm_add_dummy_prefix(const char* data, size_t n) {
  try {
    const std::string proto(data, n);
    int value = 1;
    for (const WireField& f : split_fields(proto, "ModelProto")) {
      if (f.number != 3 || f.wire_type != 2) continue;
      const std::string spec = proto.substr(f.payload_begin, f.end - f.payload_begin);
      for (const WireField& g : split_fields(spec, "NormalizerSpec")) {
        if (g.number != 3 || g.wire_type != 0) continue;
        size_t pos = g.begin;
        uint64_t tag = 0, v = 0;
        if (!read_varint(spec, pos, tag) || !read_varint(spec, pos, v)) return -1;
        value = v != 0 ? 1 : 0;
      }
    }
    return value;
  } catch (...) {
    return -1;
  }
}

LZ_EXPORT void* lz_spm_load(const char* data, size_t n, int lossless_normalizer_flag, char** err) {
  try {
    std::string proto(data, n);
    if (lossless_normalizer_flag) proto = rewrite_model_proto(proto);
    auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
    const auto status = sp->LoadFromSerializedProto(proto);
    if (!status.ok()) {
      set_error(err, std::string("SentencePiece could not parse the model: ") + status.ToString());
      return nullptr;
    }
    return sp.release();
  } catch (const std::exception& e) {
    set_error(err, std::string("malformed SentencePiece model: ") + e.what());
  } catch (...) {
    set_error(err, "malformed SentencePiece model (unknown error)");
  }
  return nullptr;
}

LZ_EXPORT void lz_spm_free(void* h) { delete static_cast<sentencepiece::SentencePieceProcessor*>(h); }

LZ_EXPORT int lz_spm_piece_count(const void* h) {
  return static_cast<const sentencepiece::SentencePieceProcessor*>(h)->GetPieceSize();
}

// The piece's text (valid while the handle lives) and its kind: 1 normal or user-defined,
// 2 unknown, 3 control, 5 unused, 6 byte. Returns 0 for an id out of range.
LZ_EXPORT int lz_spm_piece(const void* h, int id, const char** text, size_t* len) {
  const auto* sp = static_cast<const sentencepiece::SentencePieceProcessor*>(h);
  if (id < 0 || id >= sp->GetPieceSize()) return 0;
  const std::string& piece = sp->IdToPiece(id);
  *text = piece.data();
  *len = piece.size();
  if (sp->IsByte(id)) return kByte;
  if (sp->IsControl(id)) return kControl;
  if (sp->IsUnknown(id)) return kUnknown;
  if (sp->IsUnused(id)) return kUnused;
  return kNormal;
}

// which: 0 unk, 1 bos, 2 eos, 3 pad; -1 where the model has none.
LZ_EXPORT int lz_spm_special_id(const void* h, int which) {
  const auto* sp = static_cast<const sentencepiece::SentencePieceProcessor*>(h);
  switch (which) {
    case 0: return sp->unk_id();
    case 1: return sp->bos_id();
    case 2: return sp->eos_id();
    case 3: return sp->pad_id();
    default: return -1;
  }
}

// Encodes n bytes (expected to be valid UTF-8) into a malloc'ed id array. Thread-safe on one
// handle: SentencePieceProcessor::Encode is const and keeps no per-call state in the processor.
LZ_EXPORT int lz_spm_encode(const void* h, const char* data, size_t n, int32_t** ids, size_t* n_ids,
                            char** err) {
  try {
    const auto* sp = static_cast<const sentencepiece::SentencePieceProcessor*>(h);
    std::vector<int> v;
    const auto status = sp->Encode(std::string_view(data, n), &v);
    if (!status.ok()) {
      set_error(err, std::string("SentencePiece encode failed: ") + status.ToString());
      return 1;
    }
    *n_ids = v.size();
    *ids = static_cast<int32_t*>(std::malloc(sizeof(int32_t) * (v.empty() ? 1 : v.size())));
    if (!*ids) {
      set_error(err, "out of memory");
      return 1;
    }
    for (size_t i = 0; i < v.size(); ++i) (*ids)[i] = static_cast<int32_t>(v[i]);
    return 0;
  } catch (const std::exception& e) {
    set_error(err, std::string("SentencePiece encode failed: ") + e.what());
  } catch (...) {
    set_error(err, "SentencePiece encode failed (unknown error)");
  }
  return 1;
}

// Trains a model with SentencePieceTrainer from n_kv key/value options (the spm_train flags, without
// dashes) on n_sentences in-memory sentences. `seed` seeds SentencePiece's random generator.
// On success *model holds the serialized ModelProto without trainer_spec.num_threads (see
// drop_num_threads); free it with lz_spm_free_buffer.
LZ_EXPORT int lz_spm_train(const char* const* keys, const char* const* values, size_t n_kv,
                           const char* const* sentences, const size_t* lens, size_t n_sentences,
                           uint32_t seed, int log_level, char** model, size_t* model_len, char** err) {
  try {
    std::unordered_map<std::string, std::string> kwargs;
    for (size_t i = 0; i < n_kv; ++i) kwargs[keys[i]] = values[i];
    sentencepiece::SetRandomGeneratorSeed(seed);
    sentencepiece::logging::SetMinLogLevel(log_level);
    MemorySentences it(sentences, lens, n_sentences);
    std::string proto;
    const auto status = sentencepiece::SentencePieceTrainer::Train(kwargs, &it, &proto);
    if (!status.ok()) {
      set_error(err, std::string("SentencePiece training failed: ") + status.ToString());
      return 1;
    }
    proto = drop_num_threads(proto);
    *model_len = proto.size();
    *model = static_cast<char*>(std::malloc(proto.size() ? proto.size() : 1));
    if (!*model) {
      set_error(err, "out of memory");
      return 1;
    }
    std::memcpy(*model, proto.data(), proto.size());
    return 0;
  } catch (const std::exception& e) {
    set_error(err, std::string("SentencePiece training failed: ") + e.what());
  } catch (...) {
    set_error(err, "SentencePiece training failed (unknown error)");
  }
  return 1;
}
