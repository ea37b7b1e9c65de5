// libFuzzer target: arbitrary bytes into CompactFile::parse (the compact single-file formats,
// versions 4 and 3) and CompactFile::seal_matches. Built with
// FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, so the trailer checksum does not stop the fuzzer short
// of the fields. Whatever parses must serialize to bytes
// that parse back to the same file; any crash, sanitizer report or exception other than the
// documented std::runtime_error is a finding.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "codec/compact.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    (void)lorazip::CompactFile::seal_matches(bytes, bytes.substr(0, size / 2));
    const lorazip::CompactFile f = lorazip::CompactFile::parse(bytes, "fuzz-input");
    const std::string again = f.serialize();
    if (lorazip::CompactFile::parse(again, "reserialized").serialize() != again) __builtin_trap();
    uint64_t payload = 0;
    for (const auto& c : f.chunks) payload += c.size();
    if (payload > size || f.chunks.size() > f.n_tokens) __builtin_trap();
  } catch (const std::runtime_error&) {
  }
  return 0;
}
