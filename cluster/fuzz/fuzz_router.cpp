// libFuzzer target: bytes -> PromptRouter::parse (router.json of `lorazip cluster`). Every input
// must either parse into a router whose sizes agree with what it holds, or be refused with
// std::runtime_error; nothing else may escape, and nothing may read out of bounds.
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

#include "cluster/router.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    lorazip::PromptRouter r = lorazip::PromptRouter::parse(bytes, "fuzz.json");
    if (r.k() < 1 || static_cast<int64_t>(r.names().size()) != r.k()) __builtin_trap();
    for (int64_t c = 0; c < r.k(); ++c)
      if (r.name(c).empty()) __builtin_trap();
    (void)lorazip::adapter_set_identity(r, {{r.name(0), "ab"}});
  } catch (const std::runtime_error&) {
  }
  return 0;
}
