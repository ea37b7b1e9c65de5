// The archive format without a model (codec/archive.h): JSONL records split and rebuilt byte for
// byte; the index round-trips; reading a member touches only the header, footer, index and that
// member's bytes; every damaged byte of the header, index or footer is refused with the archive's
// name; hostile counts and ranges in a well-sealed index are refused.
#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "codec/archive.h"
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
  const std::vector<std::string> docs = some_docs(5);
  const std::string file = stored_archive(docs);
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

TEST(ArchiveFormat, HostileIndexFieldsAreRefused) {
  ArchiveIndex ix;
  const std::string file = stored_archive(some_docs(3), &ix);
  auto src = memory_source(file);
  const ArchiveLayout L = read_archive_layout(*src, "a.lza");
  // A member whose data would run into the index.
  ArchiveIndex longer = L.index;
  longer.members.back().data_len += 1;
  std::string block = longer.serialize_with_footer(false);
  block.resize(block.size() - kArchiveFooterBytes);
  EXPECT_THROW(ArchiveIndex::parse(block, "a.lza", L.header_bytes, L.index_offset, false), std::runtime_error);
  // A gap that jumps past the index.
  ArchiveIndex gap = L.index;
  gap.members[0].gap = uint64_t{1} << 40;
  block = gap.serialize_with_footer(false);
  block.resize(block.size() - kArchiveFooterBytes);
  EXPECT_THROW(ArchiveIndex::parse(block, "a.lza", L.header_bytes, L.index_offset, false), std::runtime_error);
  // JSONL flags in an archive of files; an adapter index past the table.
  ArchiveIndex flags = L.index;
  flags.members[0].raw_line = true;
  block = flags.serialize_with_footer(false);
  block.resize(block.size() - kArchiveFooterBytes);
  EXPECT_THROW(ArchiveIndex::parse(block, "a.lza", L.header_bytes, L.index_offset, false), std::runtime_error);
  ArchiveIndex adapter = L.index;
  adapter.members[0].coded = true;
  adapter.members[0].n_tokens = 5;
  adapter.members[0].chunk_lens = {adapter.members[0].data_len};
  adapter.adapters.push_back({0xabcd, "chat"});
  adapter.members[0].adapter = 1;
  block = adapter.serialize_with_footer(false);
  block.resize(block.size() - kArchiveFooterBytes);
  EXPECT_NO_THROW(ArchiveIndex::parse(block, "a.lza", L.header_bytes, L.index_offset, false));
  adapter.members[0].adapter = 2;
  EXPECT_THROW(adapter.serialize_with_footer(false), std::invalid_argument);
  // Garbage that is not a zstd frame.
  EXPECT_THROW(ArchiveIndex::parse("not zstd at all", "a.lza", L.header_bytes, L.index_offset, false), std::runtime_error);
  // A version-3 compact file is not an archive.
  CompactFile f;
  f.stored = true;
  auto csrc = memory_source(f.serialize());
  EXPECT_THROW(read_archive_layout(*csrc, "c.lz"), std::runtime_error);
}
