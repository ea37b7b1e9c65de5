// Integer-only range coder (arithmetic coding over integer frequencies), the entropy coder under
// lorazip's LM codec. It knows nothing of models: the caller hands it, per symbol, a cumulative
// count `cum`, a count `freq` and a total 2^total_bits, and the decoder replays the same calls.
//
// Design: a carry-propagating, byte-wise coder with a 48-bit window.
//   Encoder state: low  (uint64) — the bottom of the current interval, in units of the window;
//                  range (uint64) — its width.
//   Invariants between calls: 2^40 <= range <= 2^48 - 1 and low + range < 2^49. Bit 48 of low
//   is a carry not yet added to the held-back bytes; the next byte shift resolves it, and a
//   held-back byte can take at most one carry.
//   Per symbol: r = range >> total_bits (>= 2^40 >> 28 = 2^12, so every count of 1 keeps a
//   non-empty sub-interval), low += r * cum, range = r * freq. Both products are <= range < 2^48
//   and low + range never grows: nothing overflows 64 bits, no 128-bit arithmetic is needed.
//   After a symbol, while range < 2^40: the top byte of low goes out, low and range shift left 8.
//   A byte equal to 0xFF may still be changed by a later carry, so runs of them are held back
//   (`cache_` plus a count) until a byte that cannot absorb a carry arrives.
// Cost: the truncation in `range >> total_bits` wastes at most log2(1 + 2^total_bits / range)
//   <= log2(1 + 2^(total_bits - 40)) bits per symbol: 2e-5 bits at total_bits = 24, 3.5e-4 at 28.
//   The stream ends with at most one flush byte (see finish()).
//
// Decoder: code = (value of the stream so far) - low, kept in [0, range) for a valid stream. It
// reads 6 bytes to start and one byte per normalization shift, exactly as many as the encoder
// wrote, so a stream of N bytes is read to N + 6 - (flush bytes) <= N + 6. Bytes past the end read
// as zero (the encoder omits the zero tail of its final value), never as out-of-bounds memory.
// overrun() is set only when the decoder needs a byte more than 6 positions past the end, which a
// stream produced by RangeEncoder for the same symbol sequence never causes; it signals a
// truncated stream or more symbols decoded than encoded. A corrupted stream decodes to some
// symbol sequence without undefined behaviour; the container's checksums catch corruption.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace lorazip {

// Largest total_bits the coder accepts (frequency totals up to 2^28). choose_total_bits() never
// asks for more.
constexpr int kMaxTotalBits = 28;

class RangeEncoder {
 public:
  RangeEncoder() = default;

  // Codes one symbol whose sub-interval is [cum, cum + freq) out of 2^total_bits.
  // std::invalid_argument unless 0 <= total_bits <= kMaxTotalBits, freq >= 1 and
  // cum + freq <= 2^total_bits.
  void encode(uint32_t cum, uint32_t freq, int total_bits);

  // Flushes and returns the coded bytes. The encoder is spent afterwards (std::logic_error on use).
  // Zero symbols (or only certain ones) give an empty string.
  std::string finish();

  // Bytes written or held back so far (the final size is this plus at most one byte).
  size_t bytes_so_far() const { return out_.size() + pending_; }

 private:
  void shift_low();

  uint64_t low_ = 0;
  uint64_t range_ = (uint64_t{1} << 48) - 1;
  uint8_t cache_ = 0;     // the last byte that may still take a carry
  size_t pending_ = 0;    // bytes held back: cache_ (when has_cache_) plus a run of 0xFF
  bool has_cache_ = false;
  bool finished_ = false;
  std::string out_;
};

class RangeDecoder {
 public:
  // `data` must outlive the decoder. n = 0 is fine (decodes as all-zero input).
  RangeDecoder(const uint8_t* data, size_t n);

  // The count, in [0, 2^total_bits), that the next symbol's interval contains; pass it to
  // find_symbol() and then call consume() with that symbol's cum/freq and the same total_bits.
  // std::invalid_argument for total_bits outside [0, kMaxTotalBits].
  uint32_t target(int total_bits);

  // Removes the symbol [cum, cum + freq) of 2^total_bits; same argument checks as encode().
  void consume(uint32_t cum, uint32_t freq, int total_bits);

  // True once the decoder needed input more than 6 bytes past the end of the data: the stream
  // was truncated or more symbols were decoded than were encoded.
  bool overrun() const { return overrun_; }
  // Bytes of the data read so far (<= n).
  size_t bytes_read() const { return pos_ < n_ ? pos_ : n_; }

 private:
  uint8_t next_byte();

  const uint8_t* data_;
  size_t n_;
  size_t pos_ = 0;  // may run past n_ (zeros are read there)
  uint64_t range_ = (uint64_t{1} << 48) - 1;
  uint64_t code_ = 0;
  bool overrun_ = false;
};

// The symbol s in [0, n_symbols) with cdf[s] <= target < cdf[s + 1], found by binary search.
// cdf has n_symbols + 1 non-decreasing entries with cdf[0] = 0 and cdf[n_symbols] = 2^total_bits
// (zero-count symbols are skipped over). A target at or beyond cdf[n_symbols] gives the last
// symbol with a non-zero count. std::invalid_argument when n_symbols < 1.
int find_symbol(const uint32_t* cdf, int n_symbols, uint32_t target);

}  // namespace lorazip
