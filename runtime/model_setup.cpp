// Bases and adapters into the coding engine (model_setup.h).
#include "runtime/model_setup.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "codec/engine/from_config.h"
#include "common/fs.h"
#include "model/gguf_tokenizer.h"
#include "model/llama_tensors.h"

namespace fs = std::filesystem;

namespace lorazip {
namespace {

// Drops the pages of a tensor's stored bytes from this process (the file stays in the page cache;
// a later read faults them back in), so a mapped GGUF is not held twice while it is packed.
void release_pages(const engine::StoredTensor& t) {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(t.data) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(t.data) + t.nbytes) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

// Packs the weights and computes their fingerprint at the same time. For a mapped GGUF file the
// hasher reads the file with pread (through the page cache, not the mapping) and each matrix's
// mapped pages are released once it is packed, so the process never holds the mapped file and the
// packed copy in full at once.
void build_engine_base(LoadedModel& b, const StoredLlama& stored, const std::string& mapped_file, const uint8_t* map_base) {
  b.quantized = has_quantized_matrix(stored.tensors);
  const bool mapped = !mapped_file.empty();
  TensorReader read;
  int fd = -1;
  if (mapped) {
    fd = ::open(mapped_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(mapped_file + ": cannot open: " + std::strerror(errno));
    read = [fd, map_base, &mapped_file](const engine::StoredTensor& t, const std::function<void(const uint8_t*, size_t)>& sink) {
      std::vector<uint8_t> buf(1 << 20);
      uint64_t off = static_cast<uint64_t>(t.data - map_base), left = t.nbytes;
      while (left > 0) {
        const ssize_t n = ::pread(fd, buf.data(), static_cast<size_t>(std::min<uint64_t>(left, buf.size())), static_cast<off_t>(off));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error(mapped_file + ": read error at byte " + std::to_string(off));
        sink(buf.data(), static_cast<size_t>(n));
        off += static_cast<uint64_t>(n);
        left -= static_cast<uint64_t>(n);
      }
    };
  }
  struct Fd {
    int fd;
    ~Fd() {
      if (fd >= 0) ::close(fd);
    }
  } closer{fd};
  std::string fp;
  std::exception_ptr fp_error;
  std::thread hasher([&] {
    try {
      fp = b.quantized ? stored_fingerprint(stored.tensors, read) : float32_fingerprint(stored.tensors);
    } catch (...) {
      fp_error = std::current_exception();
    }
  });
  std::function<void(const std::string&)> on_packed;
  if (mapped) on_packed = [&stored](const std::string& key) { release_pages(stored.tensors.at(key)); };
  try {
    b.weights = std::make_shared<const engine::Weights>(engine::config_from(stored.config), stored.tensors, on_packed);
  } catch (const std::invalid_argument& e) {
    hasher.join();
    throw std::runtime_error(stored.source + ": " + e.what());
  } catch (...) {
    hasher.join();
    throw;
  }
  hasher.join();
  if (fp_error) std::rethrow_exception(fp_error);
  b.fingerprint = fp;
  b.config = stored.config;
}

// The engine's view of an adapter's pairs (pointers into `files`, which must outlive the result).
engine::LoraRef lora_ref(const PeftModule& m) { return {m.name, {{m.r, m.in}, m.a.data()}, {{m.out, m.r}, m.b.data()}, m.scaling}; }

std::vector<engine::LoraRef> lora_refs(const PeftAdapterFiles& files) {
  std::vector<engine::LoraRef> lora;
  for (const PeftModule& m : files.modules) lora.push_back(lora_ref(m));
  return lora;
}

}  // namespace

LoadedModel load_model(const std::string& dir) {
  const auto t0 = std::chrono::steady_clock::now();
  LoadedModel b;
  b.dir = dir;
  if (is_gguf_path(dir)) {
    // A llama.cpp GGUF file: mapped, its tensors packed as stored, the tokenizer from its metadata.
    if (!fs::exists(dir)) throw std::runtime_error(dir + ": No such file or directory");
    auto f = std::make_shared<const GgufFile>(GgufFile::open(dir));
    b.tokenizer = std::make_unique<Tokenizer>(tokenizer_from_gguf(*f));
    const uint8_t* base = f->map_base();
    build_engine_base(b, read_gguf_llama(std::move(f)), dir, base);
  } else {
    if (!dir_exists(dir)) throw std::runtime_error("base model directory '" + dir + "' does not exist");
    const std::string tok = base_tokenizer_path(dir);
    if (tok.empty())
      throw std::runtime_error("base model directory '" + dir + "' has neither tokenizer.model nor tokenizer.json "
                               "(lorazip needs the SentencePiece model or a byte-level BPE tokenizer.json beside the weights)");
    build_engine_base(b, read_hf_llama(dir), "", nullptr);
    b.tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(tok));
  }
  b.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return b;
}

std::string LoadedModel::float32_fingerprint() const {
  if (!quantized) return fingerprint;
  std::lock_guard<std::mutex> lock(*mu_);
  if (!float32_fp_) {
    const StoredLlama stored = is_gguf_path(dir) ? read_gguf_llama(GgufFile::open(dir)) : read_hf_llama(dir);
    float32_fp_ = std::make_shared<std::string>(lorazip::float32_fingerprint(stored.tensors));
  }
  return *float32_fp_;
}

bool LoadedModel::is_named_by(const std::string& fp) const {
  return fp == fingerprint || (quantized && fp == float32_fingerprint());
}

std::shared_ptr<const engine::Model> LoadedModel::engine_model() const {
  if (!engine_) engine_ = std::make_shared<const engine::Model>(weights);
  return engine_;
}

std::shared_ptr<const engine::Model> LoadedModel::version1_model(const LoadedAdapter* adapter) const {
  // The float32 weights (quantized ones dequantized with ggml's formulas) and, for an adapter, the
  // pairs as float32 values merged by the engine in version 1's fixed order.
  const PeftAdapterFiles pairs = adapter ? peft_adapter_floats(adapter->view) : PeftAdapterFiles{};
  const StoredLlama stored = is_gguf_path(dir) ? read_gguf_llama(GgufFile::open(dir)) : read_hf_llama(dir);
  std::vector<std::vector<float>> floats;
  floats.reserve(stored.tensors.size());
  engine::TensorMap tm;
  for (const auto& [key, t] : stored.tensors) {
    floats.push_back(stored_as_float32(t));
    tm[key] = {t.shape, floats.back().data()};
  }
  return std::make_shared<const engine::Model>(engine::config_from(stored.config), tm, lora_refs(pairs));
}

std::string write_merged_base(const LoadedModel& base, const PeftAdapterFiles& adapter, const std::string& out_dir) {
  // The weights as float32 (quantized ones dequantized with ggml's formulas), each adapted
  // projection changed by the engine's one LoRA delta: the floats version 1 computes with.
  const StoredLlama stored = is_gguf_path(base.dir) ? read_gguf_llama(GgufFile::open(base.dir)) : read_hf_llama(base.dir);
  std::map<std::string, const PeftModule*> by_weight;
  for (const PeftModule& m : adapter.modules) by_weight[m.name + ".weight"] = &m;
  std::vector<std::pair<std::string, RawTensor>> out;
  engine::StoredMap merged;  // the written floats, for their fingerprint
  for (const auto& [key, t] : stored.tensors) {
    std::vector<float> v = stored_as_float32(t);
    auto it = by_weight.find(key);
    if (it != by_weight.end()) {
      // A projection's weight is [out, in] (read_hf_llama / read_gguf_llama checked it); merge_lora
      // refuses a pair that does not fit it, naming the module.
      try {
        engine::merge_lora(lora_ref(*it->second), v.data(), t.shape.at(0), t.shape.at(1));
      } catch (const std::invalid_argument& e) {
        throw std::runtime_error("adapter '" + adapter.dir + "': " + e.what());
      }
      by_weight.erase(it);
    }
    RawTensor r;
    r.dtype = DType::F32;
    r.shape = t.shape;
    r.data.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    out.emplace_back(key, std::move(r));
  }
  if (!by_weight.empty())
    throw std::runtime_error("adapter '" + adapter.dir + "': module '" + by_weight.begin()->second->name + "' is not in base '" +
                             base.dir + "'");
  for (const auto& [key, r] : out)
    merged[key] = {r.shape, engine::WeightKind::F32, reinterpret_cast<const uint8_t*>(r.data.data()), r.data.size(), 0};
  const std::string fingerprint = float32_fingerprint(merged);
  write_hf_llama(out_dir, stored.config, std::move(out), base.tokenizer->model_bytes());
  return fingerprint;
}

AdapterEntry describe_adapter(const std::string& dir) {
  AdapterEntry e;
  e.dir = dir;
  if (!file_exists(dir + "/adapter_config.json"))
    throw std::runtime_error("'" + dir + "' is not an adapter directory (no adapter_config.json)");
  if (file_exists(dir + "/lorazip.json")) {
    AdapterInfo info = AdapterInfo::read(dir);
    e.domain = info.domain;
    e.fingerprint = info.adapter_fingerprint;
  }
  if (e.domain.empty()) e.domain = fs::path(dir).filename().string();
  return e;
}

std::vector<AdapterEntry> list_adapters(const std::string& adapters_dir) {
  if (!dir_exists(adapters_dir)) throw std::runtime_error("adapters directory '" + adapters_dir + "' does not exist");
  std::vector<std::string> dirs;
  for (const auto& e : fs::directory_iterator(adapters_dir))
    if (e.is_directory() && file_exists(e.path().string() + "/adapter_config.json")) dirs.push_back(e.path().string());
  std::sort(dirs.begin(), dirs.end());
  std::vector<AdapterEntry> out;
  for (const auto& d : dirs) out.push_back(describe_adapter(d));
  return out;
}

CodecIdentity identity_for(const LoadedModel& base, const AdapterEntry* adapter) {
  CodecIdentity id;
  id.base_fingerprint = base.fingerprint;
  id.tokenizer_fingerprint = base.tokenizer->sha256();
  if (adapter) {
    id.adapter_fingerprint = adapter->fingerprint;
    id.adapter_domain = adapter->domain;
  }
  return id;
}

CodecIdentity version1_identity(const LoadedModel& base, const AdapterEntry* adapter) {
  CodecIdentity id = identity_for(base, adapter);
  id.base_fingerprint = base.float32_fingerprint();
  return id;
}

std::shared_ptr<const LoadedAdapter> load_adapter(const LoadedModel& base, const std::string& dir) {
  auto a = std::make_shared<LoadedAdapter>();
  a->view = read_peft_adapter_view(dir, base.projections(), [&base](const std::string& fp) { return base.is_named_by(fp); },
                                   base.fingerprint);
  // lorazip.json was read with the tensors: its domain, and the fingerprint hashed there once.
  a->entry.dir = dir;
  a->entry.domain = a->view.domain();
  a->entry.fingerprint = a->view.fingerprint;
  try {
    // The one copy of the pairs: from the file's bytes into the engine's panels.
    a->engine = std::make_shared<const engine::Adapter>(*base.weights, a->view.lora());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(dir + ": " + e.what());
  }
  return a;
}

std::shared_ptr<const LoadedAdapter> CodecSet::adapter(const std::string& adapter_dir) {
  if (adapter_dir.empty()) return nullptr;
  auto it = adapters_.find(adapter_dir);
  if (it != adapters_.end()) return it->second;
  return adapters_.emplace(adapter_dir, load_adapter(base_, adapter_dir)).first->second;
}

std::string CodecSet::fingerprint(const AdapterEntry& e) {
  return e.fingerprint.empty() ? adapter(e.dir)->entry.fingerprint : e.fingerprint;
}

LmCodec& CodecSet::get(const std::string& adapter_dir) {
  auto it = codecs_.find(adapter_dir);
  if (it != codecs_.end()) return *it->second;
  std::unique_ptr<LmCodec> c;
  LoadedModel* base = &base_;
  if (adapter_dir.empty()) {
    c = std::make_unique<LmCodec>(base_.engine_model(), *base_.tokenizer, identity_for(base_, nullptr),
                                  [base] { return base->version1_model(nullptr); },
                                  [base] { return version1_identity(*base, nullptr); });
  } else {
    std::shared_ptr<const LoadedAdapter> a = adapter(adapter_dir);
    c = std::make_unique<LmCodec>(std::make_shared<const engine::Model>(base_.weights, a->engine), *base_.tokenizer,
                                  identity_for(base_, &a->entry), [base, a] { return base->version1_model(a.get()); },
                                  [base, a] { return version1_identity(*base, &a->entry); });
  }
  return *codecs_.emplace(adapter_dir, std::move(c)).first->second;
}

}  // namespace lorazip
