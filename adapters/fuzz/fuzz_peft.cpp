// libFuzzer target: bytes -> a PEFT adapter directory (adapter_config.json, lorazip.json,
// adapter_model.safetensors; layout in peft_fuzz_input.h) -> read_peft_adapter_view against a
// small Llama base -> the engine's adapter packed from the stored pairs, and the safetensors bytes
// alone -> parse_safetensors_view and parse_safetensors -> every tensor as float32.
// Anything but a clean std::exception (a crash, an out-of-bounds read, an abort) is a finding; so
// is an adapter accepted with shapes other than the base's projections ask for, a view that points
// outside the bytes it was read from, the two parsers disagreeing, or the adapter packed from the
// stored pairs giving other logits than the one packed from their float32 values.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "adapters/fuzz/peft_fuzz_input.h"
#include "adapters/peft_files.h"
#include "codec/engine/from_config.h"
#include "common/fs.h"
#include "model/llama_tensors.h"
#include "model/safetensors.h"

namespace {

const std::string& work_dir() {
  static const std::string dir = [] {
    std::string d = (std::filesystem::temp_directory_path() / ("fuzz_peft_" + std::to_string(::getpid()))).string();
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

void put(const std::string& path, const char* data, size_t n, bool present) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  if (!present) return;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (n && std::fwrite(data, 1, n, f) != n) std::abort();
  std::fclose(f);
}

// The fuzz base with small non-zero weights (a fixed pattern), packed once.
const std::shared_ptr<const lorazip::engine::Weights>& fuzz_weights() {
  using namespace lorazip;
  static const std::shared_ptr<const engine::Weights> w = [] {
    const LlamaConfig c = fuzz::fuzz_base_config();
    static std::vector<std::vector<float>> store;
    engine::StoredMap m;
    uint32_t seed = 1;
    for (const auto& [key, shape] : expected_llama_tensors(c)) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      std::vector<float> v(static_cast<size_t>(n));
      for (float& x : v) {
        seed = seed * 1664525u + 1013904223u;
        x = static_cast<float>(static_cast<int32_t>(seed >> 20) - 2048) / 4096.0f;
      }
      store.push_back(std::move(v));
      m[key] = {shape, engine::WeightKind::F32, reinterpret_cast<const uint8_t*>(store.back().data()),
                static_cast<uint64_t>(n) * 4, 0};
    }
    return std::make_shared<const engine::Weights>(engine::config_from(c), m);
  }();
  return w;
}

// The logits of two tokens under the fuzz base with `adapter`.
std::vector<float> logits_with(const std::shared_ptr<const lorazip::engine::Adapter>& adapter) {
  const lorazip::engine::Model model(fuzz_weights(), adapter);
  const int32_t tokens[2] = {1, 7};
  std::vector<float> out(static_cast<size_t>(2 * model.config().vocab_size));
  model.forward(tokens, 2, out.data());
  return out;
}

bool inside(const uint8_t* p, uint64_t n, const char* begin, size_t size) {
  const uint8_t* b = reinterpret_cast<const uint8_t*>(begin);
  return p >= b && n <= size && p - b <= static_cast<std::ptrdiff_t>(size - n);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lorazip;
  if (size < 4) return 0;
  const uint16_t n_cfg = static_cast<uint16_t>(data[0] | data[1] << 8);
  const uint16_t n_info = static_cast<uint16_t>(data[2] | data[3] << 8);
  const char* p = reinterpret_cast<const char*>(data) + 4;
  size_t left = size - 4;
  const size_t take_cfg = n_cfg == fuzz::kAbsent ? 0 : n_cfg;
  const size_t take_info = n_info == fuzz::kAbsent ? 0 : n_info;
  if (take_cfg + take_info > left) return 0;
  const std::string dir = work_dir();
  put(dir + "/adapter_config.json", p, take_cfg, n_cfg != fuzz::kAbsent);
  put(dir + "/lorazip.json", p + take_cfg, take_info, n_info != fuzz::kAbsent);
  const char* st = p + take_cfg + take_info;
  left -= take_cfg + take_info;
  put(dir + "/adapter_model.safetensors", st, left, true);

  // The view parser on bytes of their own (no terminator after them) and the copying parser agree:
  // the same refusal, or the same tensors with views inside the bytes.
  {
    const std::vector<char> bytes(st, st + left);
    std::string view_error, copy_error;
    SafetensorsView v;
    SafetensorsFile f;
    try {
      v = parse_safetensors_view(std::string_view(bytes.data(), bytes.size()), "fuzz.safetensors");
    } catch (const std::exception& e) {
      view_error = e.what();
    }
    try {
      f = parse_safetensors(std::string(st, left), "fuzz.safetensors");
    } catch (const std::exception& e) {
      copy_error = e.what();
    }
    if (view_error != copy_error || v.tensors.size() != f.tensors.size() || v.metadata != f.metadata) std::abort();
    for (const auto& [name, t] : v.tensors) {
      const RawTensor& r = f.tensors.at(name);
      if (t.dtype != r.dtype || t.shape != r.shape || t.data != r.data) std::abort();
      if (!inside(reinterpret_cast<const uint8_t*>(t.data.data()), t.data.size(), bytes.data(), bytes.size())) std::abort();
      try {
        const std::vector<float> values = to_float32(t, name);
        if (static_cast<int64_t>(values.size()) != t.numel()) std::abort();
      } catch (const std::exception&) {
      }
    }
  }

  const std::vector<Projection> projections = llama_projections(fuzz::fuzz_base_config());
  PeftAdapterView view;
  try {
    view = read_peft_adapter_view(dir, projections, [](const std::string& fp) { return fp.size() % 2 == 0; }, "fuzz-base");
  } catch (const std::exception&) {
    return 0;
  }
  // Every pair has the shape it says, of a float kind, inside the file's bytes (or the F64 pairs'
  // rounded values).
  for (const PeftModuleView& m : view.modules) {
    bool known = false;
    for (const Projection& pr : projections) known |= pr.name == m.name && pr.in == m.in && pr.out == m.out;
    if (!known || m.r < 1) std::abort();  // accepted a module the base does not have, or with other sizes
    for (const auto& [t, rows, cols] : {std::tuple{&m.a, m.r, m.in}, std::tuple{&m.b, m.out, m.r}}) {
      if (t->shape != std::vector<int64_t>{rows, cols} || t->permute_heads != 0) std::abort();
      if (t->kind != engine::WeightKind::F32 && t->kind != engine::WeightKind::F16 && t->kind != engine::WeightKind::BF16)
        std::abort();
      if (t->nbytes != engine::row_bytes(t->kind, cols) * static_cast<uint64_t>(rows)) std::abort();
      bool held = inside(t->data, t->nbytes, view.file->data(), view.file->size());
      if (view.rounded)
        for (const std::vector<float>& r : *view.rounded)
          held |= t->data == reinterpret_cast<const uint8_t*>(r.data()) && t->nbytes == r.size() * sizeof(float);
      if (!held) std::abort();
    }
  }
  // The float32 values of each pair are to_float32's of the tensor the copying parser read, and
  // the engine's adapter packed from the stored pairs computes the same bits as from those floats.
  const PeftAdapterFiles floats = peft_adapter_floats(view);
  const SafetensorsFile f = read_safetensors(dir + "/adapter_model.safetensors");
  std::vector<engine::LoraRef> refs;
  for (const PeftModule& m : floats.modules) {
    if (m.a != to_float32(f.tensors.at(peft_key(m.name, "lora_A")), "A") ||
        m.b != to_float32(f.tensors.at(peft_key(m.name, "lora_B")), "B")) {
      // NaN != NaN: compare the bits instead.
      const std::vector<float> a = to_float32(f.tensors.at(peft_key(m.name, "lora_A")), "A");
      const std::vector<float> b = to_float32(f.tensors.at(peft_key(m.name, "lora_B")), "B");
      if (a.size() != m.a.size() || b.size() != m.b.size() || std::memcmp(a.data(), m.a.data(), a.size() * 4) != 0 ||
          std::memcmp(b.data(), m.b.data(), b.size() * 4) != 0)
        std::abort();
    }
    refs.push_back({m.name, {{m.r, m.in}, m.a.data()}, {{m.out, m.r}, m.b.data()}, m.scaling});
  }
  const auto from_stored = std::make_shared<const engine::Adapter>(*fuzz_weights(), view.lora());
  const auto from_floats = std::make_shared<const engine::Adapter>(*fuzz_weights(), refs);
  const std::vector<float> x = logits_with(from_stored), y = logits_with(from_floats);
  if (std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) != 0) std::abort();
  return 0;
}
