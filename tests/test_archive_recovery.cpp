// Recovery from an `archive add` that was killed mid-write (codec/archive.h), without a model: the
// bytes an add appends (member data, new index, new footer) cut at every kind of point must be
// refused as an incomplete append naming `lorazip archive repair`, and repair must give back the
// archive exactly as it was before the add; intact archives and files with no earlier state are
// left alone.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "codec/archive.h"
#include "codec/compact.h"
#include "tests/archive_fixture.h"

using namespace lorazip;
namespace fs = std::filesystem;

namespace {

std::string random_bytes(std::mt19937& rng, size_t n) {
  std::string d(n, '\0');
  for (auto& c : d) c = static_cast<char>(rng() & 0xFF);
  return d;
}

// What `archive add` (runtime/archive_io.cpp) appends to `old` for stored documents: their data,
// the old index and footer left in place as the first new member's gap, then the new index and
// footer. *data_bytes: how much of the tail is member data.
std::string add_tail(const std::string& old, const std::vector<std::string>& docs, size_t* data_bytes) {
  auto src = memory_source(old);
  ArchiveLayout L = read_archive_layout(*src, "old.lza");
  const uint64_t old_end = L.index.layout(L.header_bytes);
  std::string data;
  for (size_t i = 0; i < docs.size(); ++i) {
    ArchiveMember m = stored_member("added" + std::to_string(L.index.members.size()), docs[i]);
    if (i == 0) m.gap = old.size() - old_end;
    L.index.members.push_back(m);
    data += docs[i];
  }
  *data_bytes = data.size();
  return data + L.index.serialize_with_footer(L.header);
}

struct Cut {
  std::string what;
  std::string bytes;
};

// The ways a killed add can end the file: inside the new data, inside the new index, inside the
// new footer, and a complete footer whose index check does not match the bytes before it.
std::vector<Cut> killed_adds(const std::string& old, const std::string& tail, size_t data_bytes) {
  const size_t n = old.size();
  const size_t full = n + tail.size();
  const std::string whole = old + tail;
  std::vector<Cut> cuts = {
      {"one byte of data", whole.substr(0, n + 1)},
      {"mid-data", whole.substr(0, n + data_bytes / 2)},
      {"all data, no index", whole.substr(0, n + data_bytes)},
      {"mid-index", whole.substr(0, n + data_bytes + (tail.size() - data_bytes - kArchiveFooterBytes) / 2)},
      {"index, no footer", whole.substr(0, full - kArchiveFooterBytes)},
      {"mid-footer (length only)", whole.substr(0, full - 8)},
      {"footer without its last byte", whole.substr(0, full - 1)},
  };
  std::string wrong_check = whole;
  wrong_check[full - 8] = static_cast<char>(wrong_check[full - 8] ^ 0x01);  // the index check32
  cuts.push_back({"full footer, wrong check", wrong_check});
  std::string zeroed = whole;  // power lost: the file grew but the last page never reached the disk
  for (size_t i = full - 100; i < full; ++i) zeroed[i] = '\0';
  cuts.push_back({"last 100 bytes zeros", zeroed});
  return cuts;
}

class TempFile {
 public:
  explicit TempFile(const std::string& tag)
      : path_((fs::path(::testing::TempDir()) / ("lorazip-recovery-" + std::to_string(::getpid()) + "-" + tag + ".lza")).string()) {}
  ~TempFile() { fs::remove(path_); }
  const std::string& path() const { return path_; }
  void write(const std::string& bytes) const {
    std::ofstream f(path_, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::string read() const {
    std::ifstream f(path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }

 private:
  std::string path_;
};

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

}  // namespace

TEST(ArchiveRecovery, EveryCutOfAnAppendIsRefusedAsIncompleteNamingRepair) {
  std::mt19937 rng(11);
  const std::string old = stored_archive({random_bytes(rng, 200), random_bytes(rng, 50), "plain text member\n"});
  size_t data_bytes = 0;
  const std::string tail = add_tail(old, {random_bytes(rng, 300), random_bytes(rng, 120)}, &data_bytes);
  {
    auto src = memory_source(old + tail);
    EXPECT_EQ(read_archive_layout(*src, "a.lza").index.members.size(), 5u) << "the simulated add is not a valid archive";
  }
  for (const Cut& c : killed_adds(old, tail, data_bytes)) {
    auto src = memory_source(c.bytes);
    try {
      read_archive_layout(*src, "dir/a.lza");
      ADD_FAILURE() << c.what << ": accepted";
    } catch (const ArchiveIncompleteAppend& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind("dir/a.lza: ", 0), 0u) << c.what << ": " << msg;
      EXPECT_TRUE(has(msg, "incomplete append after byte " + std::to_string(old.size()))) << c.what << ": " << msg;
      EXPECT_TRUE(has(msg, "lorazip archive repair dir/a.lza")) << c.what << ": " << msg;
      EXPECT_TRUE(has(msg, "3 members")) << c.what << ": " << msg;
      EXPECT_EQ(e.complete_end, old.size()) << c.what;
      EXPECT_EQ(e.members, 3u) << c.what;
    } catch (const std::exception& e) {
      ADD_FAILURE() << c.what << ": refused without naming the repair: " << e.what();
    }
    const ArchiveRepair r = find_archive_repair(*src, "a.lza");
    EXPECT_FALSE(r.intact) << c.what;
    EXPECT_EQ(r.kept_bytes, old.size()) << c.what;
    EXPECT_EQ(r.old_size, c.bytes.size()) << c.what;
  }
}

TEST(ArchiveRecovery, RepairGivesBackTheArchiveBeforeTheAddByteForByte) {
  std::mt19937 rng(12);
  const std::string old = stored_archive({random_bytes(rng, 90), random_bytes(rng, 400)});
  size_t data_bytes = 0;
  const std::string tail = add_tail(old, {random_bytes(rng, 250)}, &data_bytes);
  TempFile f("repair");
  for (const Cut& c : killed_adds(old, tail, data_bytes)) {
    f.write(c.bytes);
    const ArchiveRepair r = repair_archive(f.path());
    EXPECT_FALSE(r.intact) << c.what;
    EXPECT_EQ(r.old_size, c.bytes.size()) << c.what;
    EXPECT_EQ(r.kept_bytes, old.size()) << c.what;
    EXPECT_EQ(r.members, 2u) << c.what;
    EXPECT_TRUE(f.read() == old) << c.what << ": the repaired file is not the archive before the add";
    // The repaired archive reads, and a second repair finds nothing to do.
    auto src = open_file_source(f.path());
    EXPECT_EQ(read_archive_layout(*src, f.path()).index.members.size(), 2u) << c.what;
    EXPECT_TRUE(repair_archive(f.path()).intact) << c.what;
  }
}

TEST(ArchiveRecovery, RepairLeavesAnIntactArchiveUnchanged) {
  std::mt19937 rng(13);
  const std::string old = stored_archive({random_bytes(rng, 70), random_bytes(rng, 10)});
  size_t data_bytes = 0;
  const std::string added = old + add_tail(old, {random_bytes(rng, 60)}, &data_bytes);
  TempFile f("intact");
  for (const std::string* bytes : {&old, &added}) {
    f.write(*bytes);
    const ArchiveRepair r = repair_archive(f.path());
    EXPECT_TRUE(r.intact);
    EXPECT_EQ(r.kept_bytes, bytes->size());
    EXPECT_EQ(r.members, bytes == &old ? 2u : 3u);
    EXPECT_TRUE(f.read() == *bytes) << "repair changed an intact archive";
  }
}

// After two adds, a cut third one goes back to the second add's state, not to the first.
TEST(ArchiveRecovery, TheMostRecentCompleteStateIsKept) {
  std::mt19937 rng(14);
  const std::string first = stored_archive({random_bytes(rng, 100)});
  size_t data_bytes = 0;
  const std::string second = first + add_tail(first, {random_bytes(rng, 80)}, &data_bytes);
  const std::string third = second + add_tail(second, {random_bytes(rng, 80), random_bytes(rng, 5)}, &data_bytes);
  const std::string fourth_tail = add_tail(third, {random_bytes(rng, 200)}, &data_bytes);
  for (const Cut& c : killed_adds(third, fourth_tail, data_bytes)) {
    auto src = memory_source(c.bytes);
    const ArchiveRepair r = find_archive_repair(*src, "a.lza");
    EXPECT_EQ(r.kept_bytes, third.size()) << c.what;
    EXPECT_EQ(r.members, 4u) << c.what;
  }
}

// An archive added as a stored member carries its own valid footer and index inside the cut
// append; it must not be taken for this archive's state.
TEST(ArchiveRecovery, AnArchiveStoredInsideTheCutAppendIsNotAState) {
  std::mt19937 rng(15);
  const std::string old = stored_archive({random_bytes(rng, 150)});
  const std::string inner = stored_archive({random_bytes(rng, 40), random_bytes(rng, 30)});
  size_t data_bytes = 0;
  const std::string tail = add_tail(old, {inner, random_bytes(rng, 60)}, &data_bytes);
  // Cut right after the inner archive's bytes: its footer is the last "LRZE" in the file.
  auto src = memory_source(old + tail.substr(0, inner.size() + 10));
  const ArchiveRepair r = find_archive_repair(*src, "a.lza");
  EXPECT_EQ(r.kept_bytes, old.size());
  EXPECT_EQ(r.members, 1u);
}

// With no complete state anywhere, the reader's refusal stays what it was and repair changes
// nothing; a file full of footer magics is turned away too (the search is bounded).
TEST(ArchiveRecovery, NoEarlierStateKeepsTheRefusalAndRepairWritesNothing) {
  std::mt19937 rng(16);
  const std::string good = stored_archive({random_bytes(rng, 100)});
  ArchiveHeader h;
  h.arithmetic_version = 1;
  std::string magics = h.serialize();
  for (int i = 0; i < 2000; ++i) magics += i % 2 ? std::string("LRZE") : std::string(12, '\0') + "LRZE";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"cut inside the first index", good.substr(0, good.size() - 5)},
      {"damaged index", [&] {
         std::string b = good;
         b[b.size() - kArchiveFooterBytes - 3] ^= 0x10;
         return b;
       }()},
      {"footer magics everywhere", magics},
  };
  TempFile f("none");
  for (const auto& [what, bytes] : cases) {
    auto src = memory_source(bytes);
    try {
      read_archive_layout(*src, "b.lza");
      ADD_FAILURE() << what << ": accepted";
    } catch (const ArchiveIncompleteAppend& e) {
      ADD_FAILURE() << what << ": an earlier state was made up: " << e.what();
    } catch (const std::runtime_error& e) {
      EXPECT_FALSE(has(e.what(), "repair")) << what << ": " << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("b.lza: ", 0), 0u) << e.what();
    }
    f.write(bytes);
    try {
      repair_archive(f.path());
      ADD_FAILURE() << what << ": repair found something to keep";
    } catch (const std::runtime_error& e) {
      EXPECT_TRUE(has(e.what(), "nothing changed")) << what << ": " << e.what();
    }
    EXPECT_TRUE(f.read() == bytes) << what << ": repair wrote to a file it could not repair";
  }
}

TEST(ArchiveRecovery, RepairOfAFileThatIsNotAnArchiveSaysJustThat) {
  TempFile f("plain");
  for (const std::string& bytes : {std::string("plain text, not an archive\n"), std::string()}) {
    f.write(bytes);
    try {
      repair_archive(f.path());
      ADD_FAILURE() << "repair accepted '" << bytes << "'";
    } catch (const std::runtime_error& e) {
      EXPECT_TRUE(has(e.what(), bytes.empty() ? "the file is empty" : "not a lorazip archive")) << e.what();
      EXPECT_FALSE(has(e.what(), "earlier complete state")) << "a state was looked for in a file that is no archive: " << e.what();
    }
    EXPECT_TRUE(f.read() == bytes);
  }
}
