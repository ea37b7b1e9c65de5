// libFuzzer target: arbitrary bytes as a lorazip archive (header, footer, zstd index) through
// read_archive_layout, every member's byte range read back; and the same bytes as a JSONL line
// through split_jsonl_record, whose split must rebuild the line exactly. Built with
// FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION so checksums do not stop the fuzzer. Any crash,
// sanitizer report or exception other than std::runtime_error is a finding.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "codec/archive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    auto src = lorazip::memory_source(bytes);
    const lorazip::ArchiveLayout L = lorazip::read_archive_layout(*src, "fuzz-input");
    for (const auto& m : L.index.members) {
      if (m.offset + m.data_len > L.index_offset) __builtin_trap();
      (void)lorazip::read_member_data(*src, m);
    }
  } catch (const std::runtime_error&) {
  }
  std::string text, prefix, suffix;
  bool ascii = false;
  if (lorazip::split_jsonl_record(bytes, &text, &prefix, &suffix, &ascii) &&
      lorazip::join_jsonl_record(text, prefix, suffix, ascii) != bytes)
    __builtin_trap();
  return 0;
}
