// The range coder's encoder, decoder and CDF search. See range_coder.h for the invariants; the
// comments here only mark where each one is kept.
#include "codec/range_coder.h"

#include <stdexcept>

namespace lorazip {
namespace {

constexpr uint64_t kWindowMask = (uint64_t{1} << 48) - 1;  // low and code live in 48 bits
constexpr uint64_t kNormTop = uint64_t{1} << 40;           // range is kept >= this
constexpr size_t kCodeBytes = 6;                           // bytes in the decoder's register

void check_symbol(uint32_t cum, uint32_t freq, int total_bits, const char* who) {
  if (total_bits < 0 || total_bits > kMaxTotalBits) {
    throw std::invalid_argument(std::string(who) + ": total_bits " + std::to_string(total_bits) +
                                " outside [0, " + std::to_string(kMaxTotalBits) + "]");
  }
  if (freq == 0) {
    throw std::invalid_argument(std::string(who) + ": symbol with frequency 0 (cum " +
                                std::to_string(cum) + ") cannot be coded; give every symbol >= 1");
  }
  if (uint64_t{cum} + freq > (uint64_t{1} << total_bits)) {
    throw std::invalid_argument(std::string(who) + ": cum " + std::to_string(cum) + " + freq " +
                                std::to_string(freq) + " exceeds the total 2^" +
                                std::to_string(total_bits));
  }
}

}  // namespace

// ---- encoder ----

void RangeEncoder::shift_low() {
  const uint64_t top = low_ >> 40;  // bits 40..48: the outgoing byte plus a possible carry
  if (top != 0xFF) {
    const uint8_t carry = static_cast<uint8_t>(top >> 8);
    // With no byte held yet a carry is impossible: every interval lies inside the first window.
    if (has_cache_) out_.push_back(static_cast<char>(static_cast<uint8_t>(cache_ + carry)));
    const size_t run = pending_ - (has_cache_ ? 1 : 0);
    out_.append(run, static_cast<char>(static_cast<uint8_t>(0xFF + carry)));
    cache_ = static_cast<uint8_t>(top & 0xFF);
    has_cache_ = true;
    pending_ = 1;
  } else {
    ++pending_;  // a 0xFF that a later carry may still turn into 0x00
  }
  low_ = (low_ << 8) & kWindowMask;
}

void RangeEncoder::encode(uint32_t cum, uint32_t freq, int total_bits) {
  if (finished_) throw std::logic_error("RangeEncoder::encode after finish()");
  check_symbol(cum, freq, total_bits, "RangeEncoder::encode");
  const uint64_t r = range_ >> total_bits;  // >= 2^12 by the range invariant
  low_ += r * cum;                          // < 2^48 + 2^48: the carry sits in bit 48
  range_ = r * freq;                        // <= old range
  while (range_ < kNormTop) {
    shift_low();
    range_ <<= 8;
  }
}

std::string RangeEncoder::finish() {
  if (finished_) throw std::logic_error("RangeEncoder::finish called twice");
  finished_ = true;
  // Pick the value in [low, low + range) with the fewest non-zero bytes: a multiple of 2^48
  // (no byte at all) when the interval holds one, else a multiple of 2^40 (one byte), which the
  // interval always holds since range >= 2^40. The decoder reads the zero tail past the end.
  const uint64_t whole = uint64_t{1} << 48;
  uint64_t v = (low_ + whole - 1) & ~(whole - 1);
  int bytes = 0;
  if (v >= low_ + range_) {
    v = (low_ + kNormTop - 1) & ~(kNormTop - 1);
    bytes = 1;
  }
  low_ = v;
  for (int i = 0; i <= bytes; ++i) shift_low();  // the last shift releases every held byte
  // What is left in cache_ is a zero byte of the tail; it is not written.
  std::string out;
  out.swap(out_);
  pending_ = 0;
  return out;
}

// ---- decoder ----

RangeDecoder::RangeDecoder(const uint8_t* data, size_t n) : data_(data), n_(n) {
  for (size_t i = 0; i < kCodeBytes; ++i) code_ = (code_ << 8) | next_byte();
}

uint8_t RangeDecoder::next_byte() {
  const size_t i = pos_++;
  if (i < n_) return data_[i];
  if (i >= n_ + kCodeBytes) overrun_ = true;
  return 0;
}

uint32_t RangeDecoder::target(int total_bits) {
  if (total_bits < 0 || total_bits > kMaxTotalBits) {
    throw std::invalid_argument("RangeDecoder::target: total_bits " + std::to_string(total_bits) +
                                " outside [0, " + std::to_string(kMaxTotalBits) + "]");
  }
  const uint64_t r = range_ >> total_bits;
  const uint64_t t = code_ / r;
  const uint64_t last = (uint64_t{1} << total_bits) - 1;
  // Only a corrupted stream gets t > last (code >= range); clamping keeps the caller in bounds.
  return static_cast<uint32_t>(t > last ? last : t);
}

void RangeDecoder::consume(uint32_t cum, uint32_t freq, int total_bits) {
  check_symbol(cum, freq, total_bits, "RangeDecoder::consume");
  const uint64_t r = range_ >> total_bits;
  code_ -= r * cum;  // cum <= target keeps this >= 0; a caller's mismatch wraps (defined)
  range_ = r * freq;
  while (range_ < kNormTop) {
    // For a valid stream code < range < 2^40 here, so the mask changes nothing; for a corrupted
    // one it keeps code bounded.
    code_ = ((code_ << 8) | next_byte()) & kWindowMask;
    range_ <<= 8;
  }
}

// ---- CDF search ----

int find_symbol(const uint32_t* cdf, int n_symbols, uint32_t target) {
  if (n_symbols < 1) {
    throw std::invalid_argument("find_symbol: n_symbols " + std::to_string(n_symbols) + " < 1");
  }
  if (target >= cdf[n_symbols]) target = cdf[n_symbols] == 0 ? 0 : cdf[n_symbols] - 1;
  // Largest s in [0, n) with cdf[s] <= target; then cdf[s + 1] > target, so freq(s) > 0.
  int lo = 0, hi = n_symbols;  // answer in [lo, hi)
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    if (cdf[mid] <= target) lo = mid; else hi = mid;
  }
  return lo;
}

}  // namespace lorazip
