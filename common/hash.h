// Hashing used across lorazip: SHA-256 for fingerprints (models, adapters, tokenizers,
// token stores) and XXH64 for fast checksums of original bytes in the container.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace lorazip {

// Incremental SHA-256. hex() may be called once, after all update()s.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // Feeds a length-prefixed string so that concatenations cannot collide ("ab"+"c" vs "a"+"bc").
  void update_field(std::string_view s);
  std::string hex();  // 64 lowercase hex digits

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string sha256_hex(std::string_view data);
// SHA-256 of a whole file's bytes; throws std::runtime_error naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

uint64_t xxh64(const void* data, size_t n, uint64_t seed = 0);
inline uint64_t xxh64(std::string_view s, uint64_t seed = 0) { return xxh64(s.data(), s.size(), seed); }

}  // namespace lorazip
