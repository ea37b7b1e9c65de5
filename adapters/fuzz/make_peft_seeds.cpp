// Writes fuzz_peft's seeds into DIR: valid adapters (every projection, a subset, rsLoRA, F16 and
// BF16 tensors, with and without lorazip.json) and a few near misses, in peft_fuzz_input.h's layout.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "adapters/fuzz/peft_fuzz_input.h"
#include "adapters/lora_config.h"
#include "adapters/peft_files.h"
#include "common/fs.h"
#include "model/safetensors.h"

namespace {

using namespace lorazip;

RawTensor tensor(DType dt, int64_t rows, int64_t cols, uint32_t seed) {
  RawTensor t;
  t.dtype = dt;
  t.shape = {rows, cols};
  const size_t n = static_cast<size_t>(rows * cols);
  t.data.resize(n * dtype_size(dt));
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    const float f = static_cast<float>(static_cast<int32_t>(seed >> 8) % 2001 - 1000) / 4096.0f;
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if (dt == DType::F32) std::memcpy(&t.data[4 * i], &bits, 4);
    else {
      const uint16_t h = dt == DType::BF16 ? static_cast<uint16_t>(bits >> 16) : static_cast<uint16_t>(0x3C00 ^ (seed & 0x3FF));
      std::memcpy(&t.data[2 * i], &h, 2);
    }
  }
  return t;
}

std::string adapter(const std::vector<std::string>& targets, int64_t r, DType dt, bool rslora, bool info, int skip_one) {
  const LlamaConfig base = fuzz::fuzz_base_config();
  LoraConfig c;
  c.r = r;
  c.alpha = 2.0 * static_cast<double>(r);
  c.targets = targets;
  nlohmann::json cfg = peft_adapter_config(c, "fuzz-base");
  if (rslora) cfg["use_rslora"] = true;
  SafetensorsFile f;
  uint32_t seed = 7;
  int k = 0;
  for (const Projection& p : llama_projections(base)) {
    bool wanted = false;
    for (const auto& t : targets) wanted |= p.name.size() >= t.size() && p.name.compare(p.name.size() - t.size(), t.size(), t) == 0;
    if (!wanted || k++ == skip_one) continue;
    f.tensors[peft_key(p.name, "lora_A")] = tensor(dt, r, p.in, seed++);
    f.tensors[peft_key(p.name, "lora_B")] = tensor(dt, p.out, r, seed++);
  }
  const std::string cfg_s = cfg.dump(2);
  AdapterInfo a;
  a.domain = "fuzz";
  a.base_fingerprint = "ab";
  const std::string info_s = a.to_json().dump(2);
  return fuzz::pack_peft_input(&cfg_s, info ? &info_s : nullptr, serialize_safetensors(f));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_peft_seeds DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::vector<std::string> all = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  int i = 0;
  // Each seed is also unpacked into DIR/check and read as the fuzzer reads it: the report says
  // which seeds the reader accepts (all but the last, whose one module lacks its tensors).
  const std::vector<lorazip::Projection> projections = lorazip::llama_projections(lorazip::fuzz::fuzz_base_config());
  auto put = [&](const std::string& bytes) {
    const std::string name = dir + "/seed-" + std::to_string(i++);
    lorazip::write_file_atomic(name, bytes);
    const std::string check = dir + "/check";
    std::filesystem::create_directories(check);
    const size_t n_cfg = static_cast<uint8_t>(bytes[0]) | static_cast<uint8_t>(bytes[1]) << 8;
    const size_t n_info = static_cast<uint8_t>(bytes[2]) | static_cast<uint8_t>(bytes[3]) << 8;
    const bool has_info = n_info != lorazip::fuzz::kAbsent;
    std::filesystem::remove(check + "/lorazip.json");
    lorazip::write_file_atomic(check + "/adapter_config.json", bytes.substr(4, n_cfg));
    if (has_info) lorazip::write_file_atomic(check + "/lorazip.json", bytes.substr(4 + n_cfg, n_info));
    lorazip::write_file_atomic(check + "/adapter_model.safetensors", bytes.substr(4 + n_cfg + (has_info ? n_info : 0)));
    try {
      const lorazip::PeftAdapterFiles a = lorazip::read_peft_adapter(check, projections);
      std::printf("%s: accepted, %zu modules\n", name.c_str(), a.modules.size());
    } catch (const std::exception& e) {
      std::printf("%s: refused: %s\n", name.c_str(), e.what());
    }
    std::filesystem::remove_all(check);
  };
  put(adapter(all, 2, DType::F32, false, true, -1));
  put(adapter({"q_proj", "v_proj"}, 1, DType::F32, false, false, -1));
  put(adapter({"o_proj", "down_proj"}, 3, DType::F16, true, true, -1));
  put(adapter({"gate_proj", "up_proj"}, 2, DType::BF16, false, true, -1));
  put(adapter(all, 2, DType::F32, false, true, 3));  // one module's tensors missing
  std::printf("%d seeds in %s\n", i, dir.c_str());
  return 0;
}
