// The archive format without a model (codec/archive.h): JSONL records split and rebuilt byte for
// byte; the index round-trips; reading a member touches only the header, footer, index and that
// member's bytes; every damaged byte of the header, index or footer is refused with the archive's
// name; hostile counts and ranges in a well-sealed index are refused.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "codec/archive.h"
#include "codec/byte_io.h"
#include "codec/classical.h"
#include "codec/compact.h"
#include "tests/archive_fixture.h"

using namespace lorazip;

namespace {

// Records the byte ranges read through it.
class CountingSource : public ByteSource {
 public:
  explicit CountingSource(std::string b) : inner_(memory_source(std::move(b))) {}
  uint64_t size() const override { return inner_->size(); }
  std::string read(uint64_t offset, size_t n) const override {
    reads.emplace_back(offset, offset + n);
    return inner_->read(offset, n);
  }
  mutable std::vector<std::pair<uint64_t, uint64_t>> reads;

 private:
  std::unique_ptr<ByteSource> inner_;
};

std::vector<std::string> some_docs(size_t n) {
  std::mt19937 rng(5);
  std::vector<std::string> docs;
  for (size_t i = 0; i < n; ++i) {
    std::string d(rng() % 300, '\0');
    for (auto& c : d) c = static_cast<char>(rng() & 0xFF);
    docs.push_back(d);
  }
  docs.push_back("");
  return docs;
}

}  // namespace

TEST(ArchiveJsonl, RecordsRebuildByteForByte) {
  const std::vector<std::string> lines = {
      R"({"text": "Hello, world!\nSecond line \"quoted\" and \\ backslash\t.", "prompt": "hi", "source": "x", "model": "m"})",
      R"({"prompt": {"nested": ["a", "}"]}, "text": "caf\u00e9 \ud83d\ude80 \u0001", "n": 12})",
      "{\"text\": \"caf\xC3\xA9 \xF0\x9F\x9A\x80 plain UTF-8\", \"n\": null}",
      R"({"text":"tight","x":1})",
      R"({"text": ""})",
      R"({"text": "del \u007f in ascii mode", "k": true})",
  };
  for (const auto& line : lines) {
    std::string text, prefix, suffix;
    bool ascii = false;
    ASSERT_TRUE(split_jsonl_record(line, &text, &prefix, &suffix, &ascii)) << line;
    EXPECT_EQ(join_jsonl_record(text, prefix, suffix, ascii), line);
  }
  std::string text, prefix, suffix;
  bool ascii = false;
  ASSERT_TRUE(split_jsonl_record(lines[1], &text, &prefix, &suffix, &ascii));
  EXPECT_TRUE(ascii);
  EXPECT_EQ(text, "caf\xC3\xA9 \xF0\x9F\x9A\x80 \x01");
}

TEST(ArchiveJsonl, LinesThatCannotBeRebuiltAreRefusedForWholeLineStorage) {
  std::string text, prefix, suffix;
  bool ascii = false;
  for (const char* line : {R"({"prompt": "no text field"})", R"({"text": 12})", R"({"text": "\ud800 lone surrogate"})",
                           R"({"text": "escaped \/ slash"})", R"({"text": "upper \u00E9"})", "not json", "", R"({"text": "unterminated)",
                           R"({"text": "mixed \u00e9 and é"})"})
    EXPECT_FALSE(split_jsonl_record(line, &text, &prefix, &suffix, &ascii)) << line;
}

TEST(ArchiveFormat, IndexRoundTripsAndMembersReadOnlyTheirBytes) {
  const std::vector<std::string> docs = some_docs(40);
  const std::string file = stored_archive(docs);
  CountingSource src(file);
  const ArchiveLayout L = read_archive_layout(src, "a.lza");
  ASSERT_EQ(L.index.members.size(), docs.size());
  const std::vector<std::pair<uint64_t, uint64_t>> layout_reads = src.reads;
  for (const auto& [from, to] : layout_reads) {
    // The layout reads the header's first bytes and everything from the index on, nothing else.
    EXPECT_TRUE(to <= 24 || from >= L.index_offset) << from << ".." << to;
  }
  for (size_t k = 0; k < docs.size(); ++k) {
    src.reads.clear();
    const ArchiveMember& m = L.index.members[k];
    EXPECT_EQ(read_member_data(src, m), docs[k]);
    EXPECT_EQ(check32(docs[k]), m.check);
    ASSERT_EQ(src.reads.size(), 1u);
    EXPECT_EQ(src.reads[0], std::make_pair(m.offset, m.offset + m.data_len)) << k;
  }
}

TEST(ArchiveFormat, EmptyArchive) {
  const std::string file = stored_archive({});
  auto src = memory_source(file);
  const ArchiveLayout L = read_archive_layout(*src, "e.lza");
  EXPECT_TRUE(L.index.members.empty());
  EXPECT_EQ(file.size(), L.header_bytes + (file.size() - L.index_offset));
}

TEST(ArchiveFormat, EveryDamagedHeaderIndexOrFooterByteIsRefused) {
 for (int version : {kArchiveVersion, kArchiveVersionLegacy}) {
  SCOPED_TRACE("archive version " + std::to_string(version));
  const std::vector<std::string> docs = some_docs(5);
  const std::string file = stored_archive(docs, nullptr, version);
  auto src0 = memory_source(file);
  const ArchiveLayout L = read_archive_layout(*src0, "a.lza");
  std::vector<size_t> positions;
  for (size_t i = 0; i < L.header_bytes; ++i) positions.push_back(i);
  for (size_t i = static_cast<size_t>(L.index_offset); i < file.size(); ++i) positions.push_back(i);
  for (size_t pos : positions) {
    std::string bad = file;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x04);
    auto src = memory_source(bad);
    try {
      read_archive_layout(*src, "a.lza");
      ADD_FAILURE() << "damaged byte " << pos << " accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("a.lza: ", 0), 0u) << e.what();
    }
  }
  for (size_t n = 0; n < file.size(); n += 7) {
    auto src = memory_source(file.substr(0, n));
    EXPECT_THROW(read_archive_layout(*src, "a.lza"), std::runtime_error) << "truncated to " << n;
  }
 }
}

TEST(ArchiveFormat, HostileIndexFieldsAreRefused) {
 for (int version : {kArchiveVersion, kArchiveVersionLegacy}) {
  SCOPED_TRACE("archive version " + std::to_string(version));
  ArchiveIndex ix;
  const std::string file = stored_archive(some_docs(3), &ix, version);
  auto src = memory_source(file);
  const ArchiveLayout L = read_archive_layout(*src, "a.lza");
  const ArchiveHeader& H = L.header;
  // A member whose data would run into the index.
  ArchiveIndex longer = L.index;
  longer.members.back().data_len += 1;
  std::string block = longer.serialize_with_footer(H);
  block.resize(block.size() - kArchiveFooterBytes);
  EXPECT_THROW(ArchiveIndex::parse(block, "a.lza", L.header_bytes, L.index_offset, H), std::runtime_error);
  // A gap that jumps past the index.
  ArchiveIndex gap = L.index;
  gap.members[0].gap = uint64_t{1} << 40;
  block = gap.serialize_with_footer(H);
  block.resize(block.size() - kArchiveFooterBytes);
  EXPECT_THROW(ArchiveIndex::parse(block, "a.lza", L.header_bytes, L.index_offset, H), std::runtime_error);
  // JSONL flags in an archive of files; an adapter index past the table.
  ArchiveIndex flags = L.index;
  flags.members[0].raw_line = true;
  block = flags.serialize_with_footer(H);
  block.resize(block.size() - kArchiveFooterBytes);
  EXPECT_THROW(ArchiveIndex::parse(block, "a.lza", L.header_bytes, L.index_offset, H), std::runtime_error);
  ArchiveIndex adapter = L.index;
  adapter.members[0].coded = true;
  adapter.members[0].n_tokens = 5;
  adapter.members[0].chunk_lens = {adapter.members[0].data_len};
  adapter.adapters.push_back({0xabcd, "chat"});
  adapter.members[0].adapter = 1;
  block = adapter.serialize_with_footer(H);
  block.resize(block.size() - kArchiveFooterBytes);
  EXPECT_NO_THROW(ArchiveIndex::parse(block, "a.lza", L.header_bytes, L.index_offset, H));
  adapter.members[0].adapter = 2;
  EXPECT_THROW(adapter.serialize_with_footer(H), std::invalid_argument);
  // Garbage that is not a zstd frame.
  EXPECT_THROW(ArchiveIndex::parse("not zstd at all", "a.lza", L.header_bytes, L.index_offset, H), std::runtime_error);
  // A version-3 compact file is not an archive.
  CompactFile f;
  f.stored = true;
  auto csrc = memory_source(f.serialize());
  EXPECT_THROW(read_archive_layout(*csrc, "c.lz"), std::runtime_error);
 }
}

TEST(ArchiveFormat, NumberedNamesCountUpTheirTrailingDigits) {
  EXPECT_EQ(next_member_name("line 9"), "line 10");
  EXPECT_EQ(next_member_name("line 1"), "line 2");
  EXPECT_EQ(next_member_name("doc09"), "doc10");
  EXPECT_EQ(next_member_name("x199"), "x200");
  EXPECT_EQ(next_member_name("7"), "8");
  EXPECT_EQ(next_member_name("a/b12.txt"), "");
  EXPECT_EQ(next_member_name("name"), "");
  EXPECT_EQ(next_member_name(""), "");
  EXPECT_EQ(next_member_name("n" + std::string(kMaxMemberName - 1, '9')), "") << "one byte too long";
}

namespace {

// An index of every kind of member a JSONL archive holds: stored and coded, numbered names and
// others, adapters, several chunks, no tokens, raw lines, a gap.
ArchiveIndex varied_index() {
  ArchiveIndex ix;
  ix.adapters = {{0xd4e5, "chat"}, {0x1111, "math"}};
  auto member = [](const std::string& name, bool coded, uint64_t len) {
    ArchiveMember m;
    m.name = name;
    m.coded = coded;
    m.data_len = len;
    m.original_bytes = coded ? 0 : len;
    m.check = 0x9e3779b9u * static_cast<uint32_t>(len + name.size());
    m.prefix = "{\"text\": ";
    m.suffix = ", \"n\": " + std::to_string(len) + "}";
    return m;
  };
  ix.members.push_back(member("line 1", false, 5));
  ArchiveMember a = member("line 2", true, 10);
  a.adapter = 1;
  a.dummy_prefix = true;
  a.n_tokens = 30;
  a.chunk_lens = {6, 4};
  ix.members.push_back(a);
  ArchiveMember b = member("line 3", true, 400);
  b.n_tokens = 1000;
  b.chunk_lens = {400};
  b.ascii_escapes = true;
  ix.members.push_back(b);
  ArchiveMember c = member("empty", true, 0);
  c.adapter = 2;
  ix.members.push_back(c);
  ArchiveMember d = member("line 9", false, 3);
  d.raw_line = true;
  d.no_newline = true;
  d.gap = 17;
  ix.members.push_back(d);
  ArchiveMember e = member("line 10", true, 90);
  e.adapter = 2;
  e.n_tokens = 3;
  e.chunk_lens = {90};
  ix.members.push_back(e);
  return ix;
}

std::string unpacked_block(const std::string& with_footer) { return with_footer.substr(0, with_footer.size() - kArchiveFooterBytes); }

}  // namespace

TEST(ArchiveFormat, BothIndexVersionsRoundTripEveryField) {
  for (int version : {kArchiveVersion, kArchiveVersionLegacy}) {
    SCOPED_TRACE("archive version " + std::to_string(version));
    ArchiveHeader h;
    h.version = version;
    h.flags = kArchiveJsonl;
    h.arithmetic_version = 1;
    ArchiveIndex ix = varied_index();
    if (version == kArchiveVersionLegacy)
      for (auto& m : ix.members)
        if (m.coded) m.original_bytes = m.data_len + 7;
    const uint64_t end = ix.layout(100);
    const ArchiveIndex back = ArchiveIndex::parse(unpacked_block(ix.serialize_with_footer(h)), "a.lza", 100, end, h);
    ASSERT_EQ(back.adapters.size(), 2u);
    EXPECT_EQ(back.adapters[1].tag, 0x1111);
    EXPECT_EQ(back.adapters[1].domain, "math");
    ASSERT_EQ(back.members.size(), ix.members.size());
    for (size_t k = 0; k < ix.members.size(); ++k) {
      const ArchiveMember &a = ix.members[k], &b = back.members[k];
      SCOPED_TRACE("member " + std::to_string(k));
      EXPECT_EQ(a.name, b.name);
      EXPECT_EQ(a.coded, b.coded);
      EXPECT_EQ(a.dummy_prefix, b.dummy_prefix);
      EXPECT_EQ(a.adapter, b.adapter);
      EXPECT_EQ(a.gap, b.gap);
      EXPECT_EQ(a.data_len, b.data_len);
      EXPECT_EQ(a.offset, b.offset);
      EXPECT_EQ(a.n_tokens, b.n_tokens);
      EXPECT_EQ(a.chunk_lens, b.chunk_lens);
      EXPECT_EQ(a.check, b.check);
      EXPECT_EQ(a.raw_line, b.raw_line);
      EXPECT_EQ(a.ascii_escapes, b.ascii_escapes);
      EXPECT_EQ(a.no_newline, b.no_newline);
      EXPECT_EQ(a.raw_line ? "" : a.prefix, b.prefix);
      EXPECT_EQ(a.raw_line ? "" : a.suffix, b.suffix);
      // Version 2 does not record a coded member's original length.
      EXPECT_EQ(b.original_bytes, version == kArchiveVersion && a.coded ? 0 : a.original_bytes);
    }
  }
}

TEST(ArchiveFormat, Version2IndexIsAtLeast40PercentSmallerThanVersion1) {
  // 30 coded documents of 200-900 bytes of data, about 9 bits a token, named doc0 ... doc29.
  std::mt19937 rng(11);
  ArchiveIndex ix;
  for (int k = 0; k < 30; ++k) {
    ArchiveMember m;
    m.name = "doc" + std::to_string(k);
    m.coded = true;
    m.data_len = 200 + rng() % 700;
    m.n_tokens = m.data_len * 8 / 9 + rng() % 20;
    m.chunk_lens = {m.data_len};
    m.original_bytes = m.data_len * 3 + rng() % 100;
    m.check = static_cast<uint32_t>(rng());
    ix.members.push_back(m);
  }
  ArchiveHeader h;
  h.arithmetic_version = 1;
  const size_t v2 = ix.serialize_with_footer(h).size();
  h.version = kArchiveVersionLegacy;
  const size_t v1 = ix.serialize_with_footer(h).size();
  std::printf("index + footer for 30 members: version 1 %zu bytes (%.2f a member), version 2 %zu bytes (%.2f a member)\n", v1, v1 / 30.0,
              v2, v2 / 30.0);
  // Version 2 drops the names that count up and the original lengths, and writes the token counts
  // as small differences, column by column.
  EXPECT_LT(v2 * 10, v1 * 6);
}

namespace {

std::string refusal_of(const std::string& index_bytes, const ArchiveHeader& h) {
  try {
    ArchiveIndex::parse(index_bytes, "h.lza", 0, 1000, h);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "accepted";
}

// An index block built by hand, `body` after an empty adapter table, as the index bytes of an
// archive of `version` (version 2: once as it is and once as zstd, which must read the same).
std::string refusal_of_block(const std::string& body, int version = kArchiveVersion) {
  std::string b;
  put_varint(b, 0);  // no adapters
  b += body;
  ArchiveHeader h;
  h.version = version;
  h.arithmetic_version = 1;
  const std::string zstd = classical_compress(Classical::Zstd19, b);
  if (version == kArchiveVersionLegacy) return refusal_of(zstd, h);
  const std::string raw = refusal_of(std::string(1, '\0') + b, h);
  EXPECT_EQ(raw, refusal_of(std::string(1, '\1') + zstd, h)) << "the same block as it is and as zstd";
  return raw;
}

// ArchiveHeader::parse's refusal of `bytes` with a valid check over them ("accepted" if none).
std::string refusal_of_header(std::string bytes) {
  bytes.resize(bytes.size() - 4);
  put_le(bytes, check32(bytes), 4);
  size_t used = 0;
  try {
    ArchiveHeader::parse(bytes, "h.lza", &used);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "accepted";
}

std::string check_bytes(int n) { return std::string(static_cast<size_t>(4 * n), '\x5a'); }

}  // namespace

TEST(ArchiveFormat, HostileVersion2ColumnsAreRefused) {
  using S = std::string;
  // member count; flags as (value, run) pairs; names; gaps as runs; lengths; checks; then for coded
  // members tokens per KiB, adapters as runs, token residuals, chunk counts as runs.
  const S one_zero_run = S("\x00\x01", 2);
  EXPECT_NE(refusal_of_block(S("\x01\x20\x01", 3) + one_zero_run + S("\x00", 1) + check_bytes(1)).find("numbered on from a name that has no number"), S::npos)
      << "the first member numbered";
  EXPECT_NE(refusal_of_block(S("\x02\x00\x01\x20\x01", 5) + S("\x03" "abc") + S("\x00\x02", 2) + S("\x00\x00", 2) + check_bytes(2)).find("no number"), S::npos)
      << "numbered after a name without digits";
  EXPECT_EQ(refusal_of_block(S("\x02\x00\x01\x20\x01", 5) + S("\x03" "ab7") + S("\x00\x02", 2) + S("\x00\x00", 2) + check_bytes(2)), "accepted")
      << "numbered after ab7";
  EXPECT_NE(refusal_of_block(S("\x01\x40\x01", 3) + S("\x01" "a") + one_zero_run + S("\x00", 1) + check_bytes(1)).find("unknown flags"), S::npos);
  EXPECT_NE(refusal_of_block(S("\x01\x80\x02\x01", 4) + S("\x01" "a") + one_zero_run + S("\x00", 1) + check_bytes(1)).find("unknown flags"), S::npos)
      << "a flag value past one byte";
  EXPECT_NE(refusal_of_block(S("\x01\x00\x02", 3) + S("\x01" "a") + one_zero_run + S("\x00", 1) + check_bytes(1)).find("a run of 2 in the member flags column"), S::npos)
      << "a run longer than the members";
  EXPECT_NE(refusal_of_block(S("\x01\x00\x00", 3) + check_bytes(2)).find("a run of 0"), S::npos) << "an empty run";
  EXPECT_NE(refusal_of_block(S("\x01\x00\x01", 3) + S("\x01" "a") + S("\x00\x05", 2), kArchiveVersionLegacy).find("h.lza: "), S::npos)
      << "version 1 reads another layout";
  const S one_coded = S("\x01\x01\x01", 3) + S("\x01" "a") + one_zero_run + S("\x05", 1) + check_bytes(1);
  EXPECT_NE(refusal_of_block(one_coded + S("\x00\x00\x01\x01", 4)).find("token count out of range"), S::npos) << "-1 tokens";
  EXPECT_NE(refusal_of_block(one_coded + S("\x00\x00\x01\x00", 4)).find("data but no tokens"), S::npos);
  EXPECT_NE(refusal_of_block(one_coded + S("\x81\x80\x80\x80\x20\x00\x01\x02\x00\x01", 10)).find("tokens per KiB"), S::npos) << "2^33 tokens per KiB";
  EXPECT_EQ(refusal_of_block(one_coded + S("\x00\x00\x01\x02\x00\x01", 6)), "accepted") << "one token, one chunk";
  EXPECT_NE(refusal_of_block(one_coded + S("\x00\x01\x01\x02\x00\x01", 6)).find("names adapter 1 of 0"), S::npos);
  EXPECT_NE(refusal_of_block(one_coded + S("\x00\x00\x01\x02\x01\x01", 6)).find("more chunks than tokens"), S::npos);
  EXPECT_NE(refusal_of_block(one_coded + S("\x00\x00\x01\x02\x00\x01\x00", 7)).find("bytes after the last member"), S::npos);
  EXPECT_NE(refusal_of_block(S("\x7f\x00\x7f", 3) + S("\x01" "a") + one_zero_run + S("\x00", 1) + check_bytes(1)).find("cannot fit"), S::npos) << "127 members";
  EXPECT_NE(refusal_of_block(S("\x01\x00\x01", 3) + S("\x01" "a") + one_zero_run + S("\xe9\x07", 2) + check_bytes(1)).find("runs past the start of the index"), S::npos)
      << "1001 bytes of data before an index at byte 1000";
  // The index's first byte says how it is kept.
  ArchiveHeader h;
  h.arithmetic_version = 1;
  EXPECT_NE(refusal_of(S("\x02", 1) + S("\x00\x00", 2), h).find("neither 'as it is' (0) nor 'zstd' (1)"), S::npos);
  EXPECT_NE(refusal_of(S("\x01", 1) + S("not zstd"), h).find("does not decompress"), S::npos);
}

TEST(ArchiveFormat, Version2KeepsASmallIndexAsItIsAndALargeOneAsZstd) {
  ArchiveHeader h;
  h.arithmetic_version = 1;
  ArchiveIndex small;
  const std::string file = stored_archive({"a", "bc"}, &small);
  std::string packed = small.serialize_with_footer(h);
  ASSERT_GT(packed.size(), kArchiveFooterBytes);
  EXPECT_EQ(packed[0], '\0') << "two members: zstd's frame would cost more than it saves";
  // Many members with long repeated names: zstd wins.
  ArchiveIndex large;
  for (int k = 0; k < 200; ++k) {
    ArchiveMember m;
    m.name = "a/rather/long/directory/name/shared/by/every/member/file-" + std::to_string(k * 7) + ".txt";
    m.data_len = 10;
    m.check = static_cast<uint32_t>(k);
    large.members.push_back(m);
  }
  packed = large.serialize_with_footer(h);
  EXPECT_EQ(packed[0], '\1');
  const uint64_t end = large.layout(0);
  EXPECT_EQ(ArchiveIndex::parse(std::string_view(packed).substr(0, packed.size() - kArchiveFooterBytes), "l.lza", 0, end, h).members.back().name,
            large.members.back().name);
  auto src = memory_source(file);
  EXPECT_EQ(read_archive_layout(*src, "s.lza").index.members.size(), 2u);
}

// ---- Conversations: records coded turn by turn -------------------------------------------------

namespace {

std::vector<JsonlTurn> split_turns(const std::string& line, std::string* suffix) {
  std::vector<JsonlTurn> turns;
  EXPECT_TRUE(split_conversation_record(line, &turns, suffix)) << line;
  EXPECT_EQ(join_conversation_record(turns, *suffix), line);
  return turns;
}

std::string messages_record(size_t n, bool ascii) {
  std::string line = "{\"id\": 7, \"messages\": [";
  for (size_t k = 0; k < n; ++k) {
    if (k) line += ", ";
    const std::string content = k % 3 == 2 ? "" : "turn " + std::to_string(k) + " caf\xC3\xA9 \"q\"\n";
    line += "{\"role\": \"" + std::string(k % 2 ? "assistant" : "user") + "\", \"content\": " + json_string_literal(content, ascii) + "}";
  }
  return line + "], \"meta\": {\"k\": [1, 2]}}";
}

}  // namespace

TEST(ArchiveConversations, MessagesAndPromptResponseRecordsSplitIntoTurnsAndRebuildByteForByte) {
  std::string suffix;
  for (size_t n : {1u, 2u, 20u})
    for (bool ascii : {false, true}) {
      const std::vector<JsonlTurn> t = split_turns(messages_record(n, ascii), &suffix);
      ASSERT_EQ(t.size(), n);
      for (size_t k = 0; k < n; ++k) {
        EXPECT_EQ(t[k].turn, k);
        EXPECT_EQ(t[k].role, k % 2 ? "assistant" : "user");
        EXPECT_EQ(t[k].text, k % 3 == 2 ? "" : "turn " + std::to_string(k) + " caf\xC3\xA9 \"q\"\n");
        if (k % 3 != 2) EXPECT_EQ(t[k].ascii_escapes, ascii) << k;
      }
      EXPECT_EQ(suffix, "}], \"meta\": {\"k\": [1, 2]}}");
    }
  // The data's own shape: the response ("text") stands before the prompt; the prompt is turn 0.
  std::vector<JsonlTurn> t = split_turns(R"({"text": "The answer is 4.", "prompt": "What is 2+2?", "source": "s", "model": "m"})", &suffix);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].text, "The answer is 4.");
  EXPECT_EQ(t[0].role, "assistant");
  EXPECT_EQ(t[0].turn, 1u);
  EXPECT_EQ(t[1].text, "What is 2+2?");
  EXPECT_EQ(t[1].role, "user");
  EXPECT_EQ(t[1].turn, 0u);
  EXPECT_EQ(t[0].prefix, "{\"text\": ");
  EXPECT_EQ(suffix, ", \"source\": \"s\", \"model\": \"m\"}");
  // "response" is preferred to "text"; invalid UTF-8 inside a turn and a system turn; a message
  // whose content is not a string (a tool call) stays in the record's bytes and is no turn.
  t = split_turns("{\"prompt\": \"p\xFF\xFE\", \"text\": \"t\", \"response\": \"r\"}", &suffix);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].text, "p\xFF\xFE");
  EXPECT_EQ(t[1].text, "r");
  t = split_turns(R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "assistant", "content": null, "tool_calls": []}, {"content": "x", "role": "user"}]})",
                  &suffix);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].role, "system");
  EXPECT_EQ(t[1].role, "user");
  EXPECT_EQ(t[1].turn, 1u);
  // Neither shape, or a turn that does not rebuild: not a conversation (the caller falls back).
  std::vector<JsonlTurn> none;
  for (const char* line : {R"({"text": "alone"})", R"({"prompt": "no response"})", R"({"messages": []})", R"({"messages": [{"role": "user"}]})",
                           R"({"prompt": "p", "text": "upper \u00E9"})", R"({"messages": [{"role": "user", "content": "x"})", "not json",
                           R"({"messages": [{"role": 3, "content": "x"}]})"})
    EXPECT_FALSE(split_conversation_record(line, &none, &suffix)) << line;
  EXPECT_FALSE(split_conversation_record(R"({"messages": [{"role": "user", "content": "\ud800"}]})", &none, &suffix)) << "a lone surrogate";
}

namespace {

ArchiveHeader conversation_header() {
  ArchiveHeader h;
  h.arithmetic_version = 1;
  h.flags = kArchiveJsonl | kArchiveConversations;
  h.turn_template = ArchiveTurnTemplate::BaseTemplate;
  return h;
}

// A conversation index of stored turns: record "line 1" with three turns (member order 2, 0, 1),
// then "line 2" of one turn with no role, then a whole line.
ArchiveIndex conversation_index() {
  ArchiveIndex ix;
  auto turn = [&](const std::string& name, const std::string& text, const std::string& role, uint32_t place, bool same) {
    ArchiveMember m = stored_member(name, text);
    m.role = role;
    m.turn = place;
    m.same_record = same;
    m.prefix = "<" + text + ">";
    ix.members.push_back(m);
  };
  turn("line 1", "answer", "assistant", 2, false);
  turn("line 1", "question", "user", 1, true);
  turn("line 1", "rules", "system", 0, true);
  ix.members.back().suffix = "}";
  turn("line 2", "alone", "", 0, false);
  ix.members.back().suffix = "]";
  ArchiveMember raw = stored_member("line 3", "not json");
  raw.raw_line = true;
  raw.no_newline = true;
  ix.members.push_back(raw);
  return ix;
}

std::string conversation_refusal(const ArchiveIndex& ix, const ArchiveHeader& h) {
  const std::string packed = ix.serialize_with_footer(h);
  return refusal_of(packed.substr(0, packed.size() - kArchiveFooterBytes), h);
}

}  // namespace

TEST(ArchiveConversations, HeaderAndIndexRoundTripTurnsRolesAndRecords) {
  const ArchiveHeader h = conversation_header();
  size_t header_bytes = 0;
  const ArchiveHeader back_h = ArchiveHeader::parse(h.serialize(), "h.lza", &header_bytes);
  EXPECT_EQ(back_h.flags, h.flags);
  EXPECT_EQ(back_h.turn_template, ArchiveTurnTemplate::BaseTemplate);
  const ArchiveIndex ix = conversation_index();
  const std::string packed = ix.serialize_with_footer(h);
  const ArchiveIndex back = ArchiveIndex::parse(packed.substr(0, packed.size() - kArchiveFooterBytes), "h.lza", 0, 1000, h);
  ASSERT_EQ(back.members.size(), ix.members.size());
  for (size_t k = 0; k < ix.members.size(); ++k) {
    const ArchiveMember &a = ix.members[k], &b = back.members[k];
    EXPECT_EQ(a.name, b.name) << k;
    EXPECT_EQ(a.role, b.role) << k;
    EXPECT_EQ(a.turn, b.turn) << k;
    EXPECT_EQ(a.same_record, b.same_record) << k;
    EXPECT_EQ(a.prefix, b.prefix) << k;
    EXPECT_EQ(a.suffix, b.suffix) << k;
    EXPECT_EQ(a.raw_line, b.raw_line) << k;
    EXPECT_EQ(a.no_newline, b.no_newline) << k;
  }
  EXPECT_EQ(record_first_member(back, 2), 0u);
  EXPECT_EQ(record_first_member(back, 1), 0u);
  EXPECT_EQ(record_first_member(back, 3), 3u);
  EXPECT_EQ(record_first_member(back, 4), 4u);
}

TEST(ArchiveConversations, HostileTurnsRecordsAndHeadersAreRefused) {
  const ArchiveHeader h = conversation_header();
  ArchiveIndex ix = conversation_index();
  ix.members[1].turn = 2;  // two turns in place 2, none in place 1
  EXPECT_NE(conversation_refusal(ix, h).find("must hold 0..2 once each"), std::string::npos);
  ix = conversation_index();
  ix.members[0].turn = 3;
  EXPECT_NE(conversation_refusal(ix, h).find("has turn 3"), std::string::npos);
  ix = conversation_index();
  ix.members[1].role.clear();
  EXPECT_NE(conversation_refusal(ix, h).find("no role in a record of several turns"), std::string::npos);
  // The writer refuses a turn that cannot continue the member before it; a hand-made index too.
  ix = conversation_index();
  ix.members[3].same_record = true;  // after the record's last turn... named differently
  EXPECT_THROW(ix.serialize_with_footer(h), std::invalid_argument);
  ix = conversation_index();
  ix.members[2].no_newline = true;  // a record's end before a turn that continues it
  ix.members[3].same_record = true;
  ix.members[3].name = "line 1";
  EXPECT_THROW(ix.serialize_with_footer(h), std::invalid_argument);
  std::string block;
  put_varint(block, 0);  // no adapters
  put_varint(block, 1);  // one member, flags: stored + continues a record
  put_varint(block, 0x40);
  put_varint(block, 1);
  block += std::string(4, '\0');  // room the member count is checked against
  EXPECT_NE(refusal_of(std::string(1, '\0') + block, h).find("continues a record it cannot continue"), std::string::npos);
  ArchiveHeader plain_jsonl = h;
  plain_jsonl.flags = kArchiveJsonl;
  EXPECT_NE(refusal_of(std::string(1, '\0') + block, plain_jsonl).find("unknown flags"), std::string::npos)
      << "the flag means nothing outside a conversation archive";
  // Headers: the flag needs version 2 and JSONL records; the template byte must be known.
  ArchiveHeader bad = h;
  bad.flags = kArchiveConversations;
  EXPECT_THROW(bad.serialize(), std::invalid_argument);
  std::string hb = h.serialize();
  size_t used = 0;
  hb[5] = static_cast<char>(kArchiveConversations);  // the flags byte: conversations without JSONL
  EXPECT_NE(refusal_of_header(hb).find("conversations flag without version 2 and JSONL"), std::string::npos);
  hb = h.serialize();
  const size_t tmpl_at = hb.size() - 5;  // the template byte stands before the header's check
  hb[tmpl_at] = 3;
  EXPECT_NE(refusal_of_header(hb).find("turn template 3"), std::string::npos);
  (void)used;
}

TEST(ArchiveFormat, MemberNamesThatLeaveTheExtractionDirectoryAreRefused) {
  for (const char* ok : {"a.txt", "dir/b.md", "a..b.txt", "..hidden", "x/..y/z", "dots.../f", "a/./b"})
    EXPECT_TRUE(safe_member_name(ok)) << ok;
  for (const std::string bad : {std::string(""), std::string("/etc/passwd"), std::string(".."), std::string("../x"), std::string("a/../../x"),
                                std::string("a/.."), std::string("a\0b", 3)})
    EXPECT_FALSE(safe_member_name(bad)) << bad;
  EXPECT_EQ(extract_path("out", "dir/b.md", "a.lza"), "out/dir/b.md");
  EXPECT_EQ(extract_path("out/", "a..b.txt", "a.lza"), "out/a..b.txt");
  try {
    extract_path("out", "a/../../x", "a.lza");
    ADD_FAILURE() << "a name that climbs out of the directory was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("a.lza: member name 'a/../../x' would be written outside out"), std::string::npos) << e.what();
  }
}

// select_members: the names in the order given (all members without names), an unknown name
// refused by name, and in a conversation archive each record once, by its first member.
TEST(ArchiveFormat, SelectMembersNamesRecordsOnce) {
  ArchiveIndex ix;
  auto add = [&](const std::string& name, bool same_record) {
    ArchiveMember m;
    m.name = name;
    m.same_record = same_record;
    ix.members.push_back(m);
  };
  add("a", false);
  add("a", true);  // a's second turn
  add("b", false);
  add("c", false);
  add("c", true);
  add("c", true);
  EXPECT_EQ(select_members(ix, false, {}, "x.lza"), (std::vector<size_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(select_members(ix, true, {}, "x.lza"), (std::vector<size_t>{0, 2, 3}));
  EXPECT_EQ(select_members(ix, false, {"c", "a"}, "x.lza"), (std::vector<size_t>{3, 0}));
  EXPECT_EQ(select_members(ix, true, {"c", "b", "c"}, "x.lza"), (std::vector<size_t>{3, 2}));
  try {
    select_members(ix, true, {"b", "nope"}, "x.lza");
    FAIL() << "an unknown name was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'nope' is not a member of x.lza"), std::string::npos) << e.what();
  }
}
