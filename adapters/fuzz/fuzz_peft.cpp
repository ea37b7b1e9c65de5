// libFuzzer target: bytes -> a PEFT adapter directory (adapter_config.json, lorazip.json,
// adapter_model.safetensors; layout in peft_fuzz_input.h) -> read_peft_adapter against a small
// Llama base, and the safetensors bytes alone -> parse_safetensors -> every tensor as float32.
// Anything but a clean std::exception (a crash, an out-of-bounds read, an abort) is a finding; an
// adapter that is accepted must hold exactly the shapes the base's projections ask for.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>

#include "adapters/fuzz/peft_fuzz_input.h"
#include "adapters/peft_files.h"
#include "common/fs.h"
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

  try {
    const SafetensorsFile f = parse_safetensors(std::string(st, left), "fuzz.safetensors");
    for (const auto& [name, t] : f.tensors) {
      const std::vector<float> v = to_float32(t, name);
      if (static_cast<int64_t>(v.size()) != t.numel()) std::abort();
    }
  } catch (const std::exception&) {
  }

  const std::vector<Projection> projections = llama_projections(fuzz::fuzz_base_config());
  try {
    const PeftAdapterFiles a = read_peft_adapter(
        dir, projections, [](const std::string& fp) { return fp.size() % 2 == 0; }, "fuzz-base");
    for (const PeftModule& m : a.modules) {
      if (m.r < 1 || m.a.size() != static_cast<size_t>(m.r * m.in) || m.b.size() != static_cast<size_t>(m.out * m.r))
        std::abort();  // accepted with shapes other than it says
      bool known = false;
      for (const Projection& pr : projections) known |= pr.name == m.name && pr.in == m.in && pr.out == m.out;
      if (!known) std::abort();  // accepted a module the base does not have, or with other sizes
    }
  } catch (const std::exception&) {
  }
  return 0;
}
