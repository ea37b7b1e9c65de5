// libFuzzer target: arbitrary bytes into GgufFile::parse; when a file parses, every typed getter
// runs on every metadata key, every tensor of a dequantizable type (up to a size cap) is
// dequantized, and the Llama config mapping runs. Any crash, sanitizer report, or exception other
// than the documented std::runtime_error is a finding.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "model/gguf.h"
#include "model/gguf_llama.h"

namespace {

constexpr int64_t kMaxDequantValues = int64_t{1} << 20;  // per tensor, to keep each run short

template <class F>
void refusal_ok(F f) {
  try {
    f();
  } catch (const std::runtime_error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lorazip::GgufFile f;
  try {
    f = lorazip::GgufFile::parse(std::string(reinterpret_cast<const char*>(data), size), "fuzz-input");
  } catch (const std::runtime_error&) {
    return 0;
  }
  for (const auto& kv : f.metadata()) {
    const std::string& k = kv.first;
    refusal_ok([&] { f.get_string(k); });
    refusal_ok([&] { f.get_u32(k); });
    refusal_ok([&] { f.get_i32(k); });
    refusal_ok([&] { f.get_u64(k); });
    refusal_ok([&] { f.get_i64(k); });
    refusal_ok([&] { f.get_f32(k); });
    refusal_ok([&] { f.get_bool(k); });
    refusal_ok([&] { f.get_string_array(k); });
    refusal_ok([&] { f.get_i32_array(k); });
    refusal_ok([&] { f.get_u32_array(k); });
    refusal_ok([&] { f.get_f32_array(k); });
  }
  for (const auto& t : f.tensors()) {
    const std::string_view b = f.tensor_bytes(t);
    if (b.size() != t.nbytes) __builtin_trap();
    if (lorazip::ggml_can_dequantize(t.type) && t.numel() <= kMaxDequantValues) f.dequantize(t);
  }
  refusal_ok([&] { lorazip::llama_config_from_gguf(f); });
  return 0;
}
