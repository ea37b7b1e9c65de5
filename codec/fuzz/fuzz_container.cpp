// libFuzzer target: arbitrary bytes into Container::parse (and parse_header_only); when a file
// parses, every chunk's payload is decoded for its n_tokens steps under the fixed Zipf-512
// distribution of seeds.h. Built with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, so checksums do
// not stop the fuzzer short of the parser and decoder. Any crash, sanitizer report, or exception
// other than the documented std::runtime_error is a finding.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "codec/fuzz/seeds.h"

namespace {

constexpr uint64_t kMaxDecodeSteps = uint64_t{1} << 16;  // per input, to keep each run short

void decode_all(const lorazip::Container& c) {
  int bits = 0;
  const auto& cdf = lorazip::fuzz_seeds::zipf_cdf(&bits);
  uint64_t steps = 0;
  for (const auto& chunk : c.chunks) {
    lorazip::RangeDecoder dec(reinterpret_cast<const uint8_t*>(chunk.payload.data()),
                              chunk.payload.size());
    for (uint32_t i = 0; i < chunk.n_tokens && steps < kMaxDecodeSteps; ++i, ++steps) {
      const uint32_t t = dec.target(bits);
      const int s = lorazip::find_symbol(cdf.data(), lorazip::fuzz_seeds::kSymbols, t);
      if (s < 0 || s >= lorazip::fuzz_seeds::kSymbols || t < cdf[s] || t >= cdf[s + 1]) __builtin_trap();
      dec.consume(cdf[s], cdf[s + 1] - cdf[s], bits);
    }
    if (dec.bytes_read() > chunk.payload.size()) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    lorazip::Container::parse_header_only(bytes, "fuzz-input");
  } catch (const std::runtime_error&) {
  }
  try {
    const lorazip::Container c = lorazip::Container::parse(bytes, "fuzz-input");
    // Whatever parses must serialize again (its fields are within bounds), and that file must
    // parse back to the same container (serialize is a fixed point after one round).
    const std::string again = c.serialize();
    if (lorazip::Container::parse(again, "reserialized").serialize() != again) __builtin_trap();
    decode_all(c);
  } catch (const std::runtime_error&) {
  }
  return 0;
}
