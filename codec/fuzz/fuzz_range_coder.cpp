// libFuzzer target for the range coder itself: the input bytes describe a sequence of arbitrary
// sub-intervals (cum, freq) of arbitrary totals 2^bits, 0 <= bits <= kMaxTotalBits, which are
// encoded and then decoded. Every decoded target must fall in the interval that was encoded,
// and a valid stream must never overrun; otherwise the target traps.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "codec/range_coder.h"

namespace {

struct Sym {
  uint32_t cum, freq;
  int bits;
};

uint32_t take_u32(const uint8_t*& p, const uint8_t* end) {
  uint32_t v = 0;
  for (int i = 0; i < 4 && p < end; ++i) v |= uint32_t{*p++} << (8 * i);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t* p = data;
  const uint8_t* end = data + size;
  std::vector<Sym> syms;
  while (p < end && syms.size() < 100000) {
    const int bits = *p++ % (lorazip::kMaxTotalBits + 1);
    const uint64_t total = uint64_t{1} << bits;
    const uint32_t a = take_u32(p, end), b = take_u32(p, end);
    // Small byte values map to extreme intervals: freq 1, or freq = total, at either edge.
    const uint32_t freq = static_cast<uint32_t>(1 + (a % total));
    const uint32_t cum = static_cast<uint32_t>(b % (total - freq + 1));
    syms.push_back({cum, freq, bits});
  }
  lorazip::RangeEncoder enc;
  for (const auto& s : syms) enc.encode(s.cum, s.freq, s.bits);
  const std::string out = enc.finish();
  lorazip::RangeDecoder dec(reinterpret_cast<const uint8_t*>(out.data()), out.size());
  for (const auto& s : syms) {
    const uint32_t t = dec.target(s.bits);
    if (t < s.cum || t - s.cum >= s.freq) __builtin_trap();
    dec.consume(s.cum, s.freq, s.bits);
  }
  if (dec.overrun()) __builtin_trap();
  return 0;
}
