// The compact single-file formats (versions 5, 4 and 3, codec/compact.h) on their own: what the
// writer writes the reader reads back field for field; the fixed overhead with base + adapter is
// 12 bytes in version 4 (24 in version 3) and a stored file adds 6 (10); every flipped byte, every
// truncation and appended byte is refused by the parser or fails the seal; unknown flags and
// hostile counts are refused with the file's name; version 2 files still go to their reader.
#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <string>

#include "codec/compact.h"
#include "codec/container.h"

using namespace lorazip;

namespace {

std::string random_bytes(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

// An LM-coded file as the codec writes one: base + adapter, model-default chunking.
CompactFile coded(size_t n_chunks, size_t payload_each, int version = kCompactVersionLegacy) {
  CompactFile f;
  f.version = version;
  f.dummy_prefix = true;
  f.arithmetic_version = 1;
  f.base_tag = fingerprint_tag16("a1b2c3d4");
  f.tokenizer_tag = fingerprint_tag8("e5f6");
  f.has_adapter = true;
  f.adapter_tag = f.adapter_tag_for("0f9e");
  f.n_tokens = 700;
  if (version == kCompactVersionLegacy) {
    f.original_bytes = 3000;
    f.original_check = 0xDEADBEEF;
  } else {
    f.seal = 0xC0FFEE11;
  }
  for (size_t i = 0; i < n_chunks; ++i) f.chunks.push_back(random_bytes(static_cast<uint32_t>(i + 1), payload_each + i));
  return f;
}

void expect_same(const CompactFile& a, const CompactFile& b) {
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.seal, b.seal);
  EXPECT_EQ(a.stored, b.stored);
  EXPECT_EQ(a.stored_bytes, b.stored_bytes);
  EXPECT_EQ(a.dummy_prefix, b.dummy_prefix);
  EXPECT_EQ(a.arithmetic_version, b.arithmetic_version);
  EXPECT_EQ(a.base_tag, b.base_tag);
  EXPECT_EQ(a.tokenizer_tag, b.tokenizer_tag);
  EXPECT_EQ(a.has_adapter, b.has_adapter);
  EXPECT_EQ(a.adapter_tag, b.adapter_tag);
  EXPECT_EQ(a.context_tag, b.context_tag);
  EXPECT_EQ(a.chunk_tokens, b.chunk_tokens);
  EXPECT_EQ(a.context_tokens, b.context_tokens);
  EXPECT_EQ(a.original_bytes, b.original_bytes);
  EXPECT_EQ(a.n_tokens, b.n_tokens);
  EXPECT_EQ(a.original_check, b.original_check);
  EXPECT_EQ(a.chunks, b.chunks);
}

// Version 4 coded files: refused by the parser, or parsed but failing the seal for `original`.
void expect_refused_or_unsealed(const std::string& bytes, const std::string& original, const std::string& what) {
  try {
    CompactFile::parse(bytes, "f.lz");
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("f.lz: ", 0), 0u) << what << ": message does not start with the name: " << e.what();
    return;
  }
  EXPECT_FALSE(CompactFile::seal_matches(bytes, original)) << what << ": parsed and sealed";
}

void expect_refused(const std::string& bytes, const std::string& what) {
  try {
    CompactFile::parse(bytes, "f.lz");
    ADD_FAILURE() << what << ": accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("f.lz: ", 0), 0u) << what << ": message does not start with the name: " << e.what();
  }
}

}  // namespace

TEST(CompactFile, TagsAreTheFingerprintsFirstBytes) {
  EXPECT_EQ(fingerprint_tag16("a1b2c3"), 0xa1b2);
  EXPECT_EQ(fingerprint_tag8("e5f6"), 0xe5);
  EXPECT_EQ(fingerprint_tag16(""), 0);
  EXPECT_EQ(fingerprint_tag("a1b2c3", 2), 0xa1);
  EXPECT_EQ(fingerprint_tag("a1b2c3", 4), 0xa1b2);
  EXPECT_THROW(fingerprint_tag("a1b2c3", 3), std::invalid_argument);
  CompactFile v3;
  v3.version = kCompactVersionLegacy;
  EXPECT_EQ(v3.adapter_tag_for("a1b2c3"), 0xa1b2);
  EXPECT_EQ(CompactFile{}.adapter_tag_for("a1b2c3"), 0xa1);
}

TEST(CompactFile, RoundTripsEveryShape) {
  for (int version : {kCompactVersion, kCompactVersionLegacy}) {
    SCOPED_TRACE("version " + std::to_string(version));
    std::vector<CompactFile> shapes;
    shapes.push_back(coded(1, 300, version));
    shapes.push_back(coded(5, 40, version));
    CompactFile explicit_chunking = coded(3, 10, version);
    explicit_chunking.chunk_tokens = 300;
    explicit_chunking.context_tokens = 0;
    explicit_chunking.has_adapter = false;
    explicit_chunking.adapter_tag = 0;
    explicit_chunking.dummy_prefix = false;
    shapes.push_back(explicit_chunking);
    CompactFile empty_chunks = coded(0, 0, version);
    empty_chunks.n_tokens = 0;
    shapes.push_back(empty_chunks);
    CompactFile stored;
    stored.version = version;
    stored.stored = true;
    stored.stored_bytes = random_bytes(9, 1000);
    stored.original_bytes = 1000;
    stored.original_check = check32(stored.stored_bytes);
    shapes.push_back(stored);
    CompactFile stored_empty;
    stored_empty.version = version;
    stored_empty.stored = true;
    stored_empty.original_check = check32("");
    shapes.push_back(stored_empty);
    for (const auto& f : shapes) {
      const std::string bytes = f.serialize();
      EXPECT_EQ(container_version(bytes, "f.lz"), version);
      const CompactFile back = CompactFile::parse(bytes, "f.lz");
      expect_same(f, back);
      EXPECT_EQ(back.serialize(), bytes) << "same file, same bytes";
    }
  }
}

TEST(CompactFile, Version4FixedOverheadWithBaseAndAdapterIs12Bytes) {
  // One chunk, token count below 16 Ki: magic 1, flags 1, tags 2 + 1 + 1, n_tokens 2, seal 4.
  CompactFile f = coded(1, 400, kCompactVersion);
  EXPECT_EQ(f.adapter_tag, 0x0f);
  f.n_tokens = 16383;
  EXPECT_EQ(f.serialize_sealed("x").size() - 400, 12u);
  f.n_tokens = 30;
  EXPECT_EQ(f.serialize_sealed("x").size() - 400, 11u);
  f.has_adapter = false;
  EXPECT_EQ(f.serialize_sealed("x").size() - 400, 10u);
  // Version 3 spends 12 bytes more: 4-byte magic + version, a 16-bit adapter tag, original_bytes,
  // a second checksum.
  CompactFile g = coded(1, 400);
  g.original_bytes = 16383;
  g.n_tokens = 16383;
  EXPECT_EQ(g.serialize().size() - 400, 24u);
  g.original_bytes = 120;
  g.n_tokens = 30;
  EXPECT_EQ(g.serialize().size() - 400, 22u);
}

TEST(CompactFile, StoredFileOfOneMegabyteGrowsBySixBytes) {
  CompactFile f;
  f.stored = true;
  f.stored_bytes = random_bytes(3, 1 << 20);
  const std::string bytes = f.serialize();
  EXPECT_EQ(bytes.size(), (1u << 20) + 6);
  EXPECT_EQ(CompactFile::parse(bytes, "f.lz").stored_bytes, f.stored_bytes);
  f.version = kCompactVersionLegacy;
  EXPECT_EQ(f.serialize().size(), (1u << 20) + 10);
}

TEST(CompactFile, ACodedVersion4FileWithoutItsSealIsNotSerialized) {
  CompactFile f = coded(1, 30, kCompactVersion);
  f.seal.reset();
  try {
    (void)f.serialize();
    ADD_FAILURE() << "an unsealed version-4 coded file was serialized";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no seal"), std::string::npos) << e.what();
  }
  // serialize_sealed() computes it; a stored file and a version-3 file need none.
  EXPECT_TRUE(CompactFile::seal_matches(f.serialize_sealed("text"), "text"));
  CompactFile stored;
  stored.stored = true;
  stored.stored_bytes = "abc";
  EXPECT_EQ(stored.serialize().size(), 3u + 6u);
  EXPECT_NO_THROW((void)coded(1, 30, kCompactVersionLegacy).serialize());
}

TEST(CompactFile, SealBindsTheFileAndTheDecodedBytes) {
  const std::string original = "the document the payload stands for";
  const std::string good = coded(2, 20, kCompactVersion).serialize_sealed(original);
  EXPECT_TRUE(CompactFile::seal_matches(good, original));
  EXPECT_EQ(CompactFile::parse(good, "f.lz").seal, compact_seal(good.substr(0, good.size() - 4), original));
  EXPECT_EQ(coded(2, 20, kCompactVersion).seal_for(original), compact_seal(good.substr(0, good.size() - 4), original));
  std::string other = original;
  other[3] ^= 1;
  EXPECT_FALSE(CompactFile::seal_matches(good, other)) << "another decoded text";
  EXPECT_FALSE(CompactFile::seal_matches(good, original + "x")) << "one decoded byte more";
  EXPECT_FALSE(CompactFile::seal_matches(good, "")) << "nothing decoded";
}

TEST(CompactFile, EverySingleByteFlipIsRefused) {
  for (const CompactFile& f : {coded(1, 30), coded(3, 8)}) {
    const std::string good = f.serialize();
    for (size_t i = 0; i < good.size(); ++i) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ 0x20);
      expect_refused(bad, "byte " + std::to_string(i) + " flipped");
    }
  }
  // Version 4: a coded file's flips are caught by the parser or, after decoding, by the seal.
  const std::string original = "decoded text";
  for (const CompactFile& f : {coded(1, 30, kCompactVersion), coded(3, 8, kCompactVersion)}) {
    const std::string good = f.serialize_sealed(original);
    ASSERT_TRUE(CompactFile::seal_matches(good, original));
    for (size_t i = 0; i < good.size(); ++i) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ 0x20);
      expect_refused_or_unsealed(bad, original, "version 4, byte " + std::to_string(i) + " flipped");
    }
  }
  CompactFile stored;
  stored.stored = true;
  stored.stored_bytes = "stored bytes";
  const std::string good = stored.serialize();
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    expect_refused(bad, "stored version 4, byte " + std::to_string(i) + " flipped");
  }
}

TEST(CompactFile, EveryTruncationAndAppendedByteIsRefused) {
  const std::string good = coded(2, 20).serialize();
  for (size_t n = 0; n < good.size(); ++n) expect_refused(good.substr(0, n), "truncated to " + std::to_string(n));
  expect_refused(good + "x", "one byte appended");
  const std::string original = "decoded text";
  const std::string good4 = coded(2, 20, kCompactVersion).serialize_sealed(original);
  for (size_t n = 0; n < good4.size(); ++n)
    expect_refused_or_unsealed(good4.substr(0, n), original, "version 4 truncated to " + std::to_string(n));
  expect_refused_or_unsealed(good4 + "x", original, "version 4, one byte appended");
  expect_refused_or_unsealed(good4 + good4, original, "version 4, the file twice");
}

// A file whose trailer is recomputed: the checks behind the checksum must hold on their own.
std::string resealed(std::string body_without_trailer) {
  uint32_t c = check32(body_without_trailer);
  for (int i = 0; i < 4; ++i) body_without_trailer.push_back(static_cast<char>((c >> (8 * i)) & 0xFF));
  return body_without_trailer;
}

TEST(CompactFile, ForgedFieldsWithValidChecksumsAreRefused) {
  const std::string pre = std::string(kContainerMagic, 4) + static_cast<char>(kCompactVersionLegacy);
  // Unknown flag bits; stored combined with coding flags.
  expect_refused(resealed(pre + static_cast<char>(0x10) + std::string(20, '\1')), "unknown flag 0x10");
  expect_refused(resealed(pre + static_cast<char>(kCompactStored | kCompactAdapter) + "abc"), "stored + adapter");
  // arithmetic version 0.
  expect_refused(resealed(pre + std::string("\0\0\1\2\3\5\5\0\0\0\0", 11)), "arithmetic version 0");
  // A chunk count far beyond what the file can hold.
  std::string hostile = pre + static_cast<char>(kCompactMultiChunk) + std::string("\1\1\2\3", 4);
  hostile += std::string("\x7f\x7f", 2);                      // original_bytes 127, n_tokens 127
  hostile += std::string(4, '\0');                          // original_check
  hostile += std::string("\xff\xff\xff\xff\x0f", 5);         // n_chunks - 2 = 2^32 - 1
  expect_refused(resealed(hostile), "hostile chunk count");
  // More chunks than tokens.
  std::string few = pre + static_cast<char>(kCompactMultiChunk) + std::string("\1\1\2\3", 4) + std::string("\x05\x02", 2) +
                    std::string(4, '\0') + std::string("\x01\x01\x01", 3) + "abc";
  expect_refused(resealed(few), "3 chunks for 2 tokens");
  // A chunk length running past the end.
  std::string past = pre + static_cast<char>(kCompactMultiChunk) + std::string("\1\1\2\3", 4) + std::string("\x05\x09", 2) +
                     std::string(4, '\0') + std::string("\x00\x40", 2) + "abc";
  expect_refused(resealed(past), "chunk length past the end");
  // Bytes after the header of a file without tokens.
  std::string tokenless = pre + std::string("\0\1\2\3\4", 5) + std::string("\x00\x00", 2) + std::string(4, '\0') + "zz";
  expect_refused(resealed(tokenless), "payload without tokens");
  // Explicit chunking with context >= chunk.
  std::string ctx = pre + static_cast<char>(kCompactChunking) + std::string("\1\1\2\3", 4) + std::string("\x08\x08", 2) +
                    std::string("\x00\x00", 2) + std::string(4, '\0');
  expect_refused(resealed(ctx), "context_tokens 8 with chunk_tokens 8");

  // Version 4: the parser checks the fields before any seal (a coded file's seal is checked after
  // decoding), so these need no valid trailer. Flags byte: arithmetic version 1 in bits 4-6.
  const std::string m4(1, kCompactMagic4);
  const char v1 = static_cast<char>(1 << kCompactArithmeticShift);
  const std::string seal(4, '\0');
  expect_refused(resealed(m4 + static_cast<char>(kCompactStored | kCompactAdapter) + "abc"), "version 4: stored + adapter");
  expect_refused(resealed(m4 + static_cast<char>(kCompactStored | 0x10) + "abc"), "version 4: stored + arithmetic bits");
  // Version 4 has no spare bit: a stored byte with bits 4-6 set combines 'stored' with coding
  // flags (docs/container-format.md), it names no unknown feature.
  try {
    CompactFile::parse(resealed(m4 + static_cast<char>(kCompactStored | 0x70) + "abc"), "f.lz");
    ADD_FAILURE() << "version 4: stored + bits 4-6 accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "f.lz: invalid header: flags 0xf0 combine 'stored' with coding flags");
  }
  expect_refused(m4 + std::string("\0\1\2\3\5", 5) + seal, "version 4: arithmetic version 0");
  expect_refused(m4 + static_cast<char>(v1 | kCompactMultiChunk) + std::string("\1\2\3", 3) + std::string("\x7f", 1) +
                     std::string("\xff\xff\xff\xff\x0f", 5) + seal,
                 "version 4: hostile chunk count");
  expect_refused(m4 + static_cast<char>(v1 | kCompactMultiChunk) + std::string("\1\2\3", 3) + std::string("\x02", 1) +
                     std::string("\x01\x01\x01", 3) + "abc" + seal,
                 "version 4: 3 chunks for 2 tokens");
  expect_refused(m4 + static_cast<char>(v1 | kCompactMultiChunk) + std::string("\1\2\3", 3) + std::string("\x09", 1) +
                     std::string("\x00\x40", 2) + "abc" + seal,
                 "version 4: chunk length past the end");
  expect_refused(m4 + v1 + std::string("\1\2\3", 3) + std::string("\x00", 1) + "zz" + seal, "version 4: payload without tokens");
  expect_refused(m4 + static_cast<char>(v1 | kCompactChunking) + std::string("\1\2\3", 3) + std::string("\x08\x08\x01", 3) + "p" + seal,
                 "version 4: context_tokens 8 with chunk_tokens 8");
  expect_refused(m4 + v1 + std::string("\1\2", 2), "version 4: shorter than the minimum");
}

TEST(CompactFile, WriterRefusesWhatTheReaderWould) {
  CompactFile f = coded(1, 10);
  f.arithmetic_version = 0;
  EXPECT_THROW(f.serialize(), std::invalid_argument);
  f = coded(2, 10);
  f.n_tokens = 1;
  EXPECT_THROW(f.serialize(), std::invalid_argument);
  f = coded(0, 0);  // tokens but no chunks
  EXPECT_THROW(f.serialize(), std::invalid_argument);
  f = coded(1, 10);
  f.chunk_tokens = 10;
  f.context_tokens = 10;
  EXPECT_THROW(f.serialize(), std::invalid_argument);
  f = coded(1, 10, kCompactVersion);
  f.arithmetic_version = 8;  // version 4 has three bits for it
  EXPECT_THROW(f.serialize(), std::invalid_argument);
  f.arithmetic_version = 7;
  EXPECT_NO_THROW(f.serialize());
  f.adapter_tag = 0x100;  // version 4's adapter tag is one byte
  EXPECT_THROW(f.serialize(), std::invalid_argument);
  f.adapter_tag = 0xFF;
  EXPECT_NO_THROW(f.serialize());
  f.version = 6;
  EXPECT_THROW(f.serialize(), std::invalid_argument);
  f.version = 2;
  EXPECT_THROW(f.serialize(), std::invalid_argument);
}

TEST(CompactFile, VersionByteSendsFilesToTheirReader) {
  Container c;
  c.arithmetic_version = 1;
  c.total_bits = 16;
  c.chunk_tokens = 10;
  c.group_streams = 1;
  const std::string v2 = c.serialize();
  EXPECT_EQ(container_version(v2, "v2.lz"), kContainerVersion);
  EXPECT_NO_THROW(Container::parse(v2, "v2.lz"));
  EXPECT_THROW(CompactFile::parse(v2, "v2.lz"), std::runtime_error);
  EXPECT_THROW(container_version("", "e.lz"), std::runtime_error);
  EXPECT_THROW(container_version("LRZ", "e.lz"), std::runtime_error);
  EXPECT_THROW(container_version("GZIP", "e.lz"), std::runtime_error);
  EXPECT_EQ(container_version(std::string(1, kCompactMagic4), "v4.lz"), kCompactVersion);
  EXPECT_THROW(CompactFile::parse(std::string(1, kCompactMagic4) + "abcd", "v4.lz"), std::runtime_error);
  EXPECT_THROW(container_version("L\xFB", "e.lz"), std::runtime_error);
}

TEST(CompactFile, AnArchiveIsRefusedAsAnArchive) {
  const std::string archive = std::string("LRZA\x02\x00\x01", 7) + std::string(30, '\0');
  for (auto read : {+[](const std::string& b) { (void)CompactFile::parse(b, "x.lza"); }, +[](const std::string& b) { (void)container_version(b, "x.lza"); }}) {
    try {
      read(archive);
      ADD_FAILURE() << "an archive was read as a compact file";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("x.lza: a lorazip archive, not a single compressed file"), std::string::npos) << e.what();
    }
  }
}

// Version 5: version 4 coded given a context, its magic 0xFB and the context's 16-bit tag after the
// adapter tag; two bytes more than version 4, sealed the same way; never a stored file.
TEST(CompactFile, Version5CarriesTheContextTag) {
  const std::string original = "the response";
  for (const bool adapter : {true, false}) {
    CompactFile f = coded(2, 30, kCompactVersion);
    f.has_adapter = adapter;
    f.adapter_tag = adapter ? f.adapter_tag : 0;
    const std::string v4 = f.serialize_sealed(original);
    f.version = kCompactVersionContext;
    f.context_tag = fingerprint_tag16("47c494d4");
    const std::string v5 = f.serialize_sealed(original);
    EXPECT_EQ(static_cast<uint8_t>(v5[0]), 0xFB);
    EXPECT_EQ(v5.size(), v4.size() + 2);
    EXPECT_EQ(container_version(v5, "c.lz"), kCompactVersionContext);
    const CompactFile back = CompactFile::parse(v5, "c.lz");
    CompactFile want = f;
    want.seal = back.seal;
    expect_same(back, want);
    EXPECT_EQ(back.context_tag, 0x47c4);
    EXPECT_TRUE(CompactFile::seal_matches(v5, original));
    EXPECT_FALSE(CompactFile::seal_matches(v5, original + "!"));
    // The tag is bound by the seal: another tag parses but fails it.
    std::string other = v5;
    const size_t at = adapter ? 6 : 5;  // magic, flags, base tag (2), tokenizer tag, [adapter tag]
    ASSERT_EQ(static_cast<uint8_t>(other[at]), 0x47);
    other[at] = 0x48;
    EXPECT_EQ(CompactFile::parse(other, "c.lz").context_tag, 0x48c4);
    EXPECT_FALSE(CompactFile::seal_matches(other, original));
    for (size_t n = 0; n < v5.size(); ++n) expect_refused_or_unsealed(v5.substr(0, n), original, "truncated to " + std::to_string(n));
  }
  // A stored file needs no context: version 5 never holds one.
  CompactFile stored;
  stored.version = kCompactVersionContext;
  stored.stored = true;
  stored.stored_bytes = "abc";
  EXPECT_THROW(stored.serialize(), std::invalid_argument);
  stored.version = kCompactVersion;
  std::string bytes = stored.serialize();
  bytes[0] = static_cast<char>(0xFB);
  expect_refused(bytes, "a stored file under version 5's magic");
}
