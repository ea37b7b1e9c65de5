// libFuzzer target: arbitrary bytes as a lorazip archive (header, footer, zstd index) through
// read_archive_layout, every member's byte range read back, every coded member expanded to its
// compact file, the index written again and read back to the same members, and through the repair search
// (find_archive_repair: the state it keeps must read on its own), a conversation archive's turns
// checked against their records and expanded to version-5 files; and the same bytes as a JSONL line
// through split_jsonl_record and split_conversation_record, whose splits must rebuild the line
// exactly. Built with
// FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION so checksums do not stop the fuzzer. Any crash,
// sanitizer report or exception other than std::runtime_error is a finding.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "codec/archive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    auto src = lorazip::memory_source(bytes);
    const lorazip::ArchiveLayout L = lorazip::read_archive_layout(*src, "fuzz-input");
    for (const auto& m : L.index.members) {
      if (m.offset + m.data_len > L.index_offset) __builtin_trap();
      const std::string data = lorazip::read_member_data(*src, m);
      // A coded member must expand to a compact file that writes and reads back.
      if (m.coded) {
        const std::string file = lorazip::member_compact_file(L.header, L.index, m, data).serialize();
        if (lorazip::CompactFile::parse(file, "member").n_tokens != m.n_tokens) __builtin_trap();
      }
    }
    // The index written again in its version reads back to the same members.
    const std::string again = L.index.serialize_with_footer(L.header);
    const lorazip::ArchiveIndex back = lorazip::ArchiveIndex::parse(std::string_view(again).substr(0, again.size() - lorazip::kArchiveFooterBytes),
                                                                     "again", L.header_bytes, L.index_offset, L.header);
    if (back.members.size() != L.index.members.size()) __builtin_trap();
    for (size_t k = 0; k < back.members.size(); ++k) {
      const lorazip::ArchiveMember &a = L.index.members[k], &b = back.members[k];
      if (a.name != b.name || a.offset != b.offset || a.data_len != b.data_len || a.n_tokens != b.n_tokens || a.chunk_lens != b.chunk_lens ||
          a.check != b.check || a.adapter != b.adapter || a.prefix != b.prefix || a.suffix != b.suffix || a.role != b.role ||
          a.turn != b.turn || a.same_record != b.same_record)
        __builtin_trap();
      // A conversation turn reads back as a member of its record, whose first member is no turn of another.
      const size_t first = lorazip::record_first_member(back, k);
      if (first > k || (first < k && !back.members[k].same_record) || back.members[first].same_record) __builtin_trap();
    }
    // A conversation archive's coded turns also expand to version-5 files (given a context).
    if (L.header.flags & lorazip::kArchiveConversations)
      for (const auto& m : L.index.members)
        if (m.coded) {
          const std::string file = lorazip::member_compact_file(L.header, L.index, m, lorazip::read_member_data(*src, m), 0xbeef).serialize();
          const lorazip::CompactFile f = lorazip::CompactFile::parse(file, "turn");
          if (f.context_tag != 0xbeef || f.n_tokens != m.n_tokens) __builtin_trap();
        }
  } catch (const std::runtime_error&) {
  }
  // The recovery path (an archive that ends with an incomplete append): the state it would cut
  // back to must lie inside the file and read as a complete archive on its own.
  try {
    auto src = lorazip::memory_source(bytes);
    const lorazip::ArchiveRepair r = lorazip::find_archive_repair(*src, "fuzz-input");
    if (r.old_size != size || r.kept_bytes > size || (r.intact && r.kept_bytes != size)) __builtin_trap();
    if (!r.intact) {
      auto kept = lorazip::memory_source(bytes.substr(0, static_cast<size_t>(r.kept_bytes)));
      size_t members = 0;
      try {
        members = lorazip::read_archive_layout(*kept, "fuzz-kept").index.members.size();
      } catch (const std::runtime_error&) {
        __builtin_trap();  // repair would leave a file that does not read
      }
      if (members != r.members) __builtin_trap();
    }
  } catch (const std::runtime_error&) {
  }
  std::string text, prefix, suffix;
  bool ascii = false;
  if (lorazip::split_jsonl_record(bytes, &text, &prefix, &suffix, &ascii) &&
      lorazip::join_jsonl_record(text, prefix, suffix, ascii) != bytes)
    __builtin_trap();
  // And as a conversation record: its turns and the bytes around them rebuild the line; their
  // places are 0..n-1 once each.
  std::vector<lorazip::JsonlTurn> turns;
  if (lorazip::split_conversation_record(bytes, &turns, &suffix)) {
    if (turns.empty() || lorazip::join_conversation_record(turns, suffix) != bytes) __builtin_trap();
    std::vector<char> seen(turns.size(), 0);
    for (const auto& t : turns)
      if (t.turn >= turns.size() || seen[t.turn]++ || t.role.size() > lorazip::kMaxTurnRole) __builtin_trap();
  }
  return 0;
}
