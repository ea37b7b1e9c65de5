// Little-endian integers, LEB128 varints and length-prefixed strings for lorazip's binary formats
// (the container, the compact file, the archive index), and ByteReader: a bounds-checked cursor
// whose every read compares the length with the bytes left first and throws std::runtime_error
// "<name>: ..." naming the field, so a hostile file is refused rather than read out of bounds.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace lorazip {

inline void put_u8(std::string& out, uint8_t v) { out.push_back(static_cast<char>(v)); }

inline void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

inline void put_varint(std::string& out, uint64_t v) {  // unsigned LEB128, minimal
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

inline void put_str(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

inline size_t varint_size(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

// A cursor over [pos, end) of `bytes`; every read checks the bytes left first.
class ByteReader {
 public:
  ByteReader(std::string_view bytes, size_t pos, size_t end, const std::string& name)
      : b_(bytes), pos_(pos), end_(end), name_(name) {}

  [[noreturn]] void fail(const std::string& what) const { throw std::runtime_error(name_ + ": " + what); }
  size_t left() const { return end_ - pos_; }
  size_t pos() const { return pos_; }

  void need(size_t n, const char* field) const {
    if (n > left())
      fail(std::string("truncated header: field '") + field + "' needs " + std::to_string(n) + " bytes, " +
           std::to_string(left()) + " left");
  }
  uint8_t u8(const char* field) {
    need(1, field);
    return static_cast<uint8_t>(b_[pos_++]);
  }
  uint64_t le(int bytes, const char* field) {
    need(static_cast<size_t>(bytes), field);
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(b_[pos_ + i])} << (8 * i);
    pos_ += static_cast<size_t>(bytes);
    return v;
  }
  uint64_t varint(const char* field) {
    uint64_t v = 0;
    for (int i = 0; i < 10; ++i) {
      const uint8_t byte = u8(field);
      if (i == 9 && byte > 1) fail(std::string("header field '") + field + "': varint overflows 64 bits");
      v |= uint64_t{byte & 0x7Fu} << (7 * i);
      if ((byte & 0x80) == 0) {
        if (byte == 0 && i > 0) fail(std::string("header field '") + field + "': non-canonical varint (trailing zero group)");
        return v;
      }
    }
    fail(std::string("header field '") + field + "': varint longer than 10 bytes");
  }
  // A varint that must lie in [lo, hi]; checked before any narrowing.
  uint64_t varint_in(const char* field, uint64_t lo, uint64_t hi) {
    const uint64_t v = varint(field);
    if (v < lo || v > hi)
      fail(std::string("invalid header: ") + field + " " + std::to_string(v) + " outside [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "]");
    return v;
  }
  std::string_view bytes(size_t n, const char* field) {
    need(n, field);
    std::string_view s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string str(const char* field, size_t max_len) {
    const uint64_t n = varint(field);
    if (n > max_len)
      fail(std::string("header field '") + field + "': length " + std::to_string(n) + " exceeds the limit of " +
           std::to_string(max_len) + " bytes");
    return std::string(bytes(static_cast<size_t>(n), field));
  }

 private:
  std::string_view b_;
  size_t pos_, end_;
  const std::string& name_;
};

}  // namespace lorazip
