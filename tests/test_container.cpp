// The container keeps everything a decoder needs, byte for byte, and refuses every malformed,
// truncated or corrupted file with a clear error instead of crashing or decoding garbage.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "codec/container.h"
#include "codec/fuzz/seeds.h"
#include "codec/range_coder.h"
#include "common/fs.h"
#include "common/hash.h"

namespace lorazip {
namespace {

Container sample() {
  Container c;
  c.base_fingerprint = sha256_hex("base");
  c.tokenizer_fingerprint = sha256_hex("tok");
  c.adapter_fingerprint = sha256_hex("adapter");
  c.adapter_domain = "math";
  c.adapter_mode = AdapterMode::Merged;
  c.arithmetic_version = 1;
  c.total_bits = 20;
  c.chunk_tokens = 100;
  c.group_streams = 8;
  c.original_bytes = 1234;
  c.original_xxh64 = xxh64("original text");
  c.chunks = {fuzz_seeds::coded_chunk(100, 1), fuzz_seeds::coded_chunk(40, 2),
              ContainerChunk{0, ""}, fuzz_seeds::coded_chunk(3, 3)};
  return c;
}

void expect_same(const Container& a, const Container& b) {
  EXPECT_EQ(a.flags, b.flags);
  EXPECT_EQ(a.base_fingerprint, b.base_fingerprint);
  EXPECT_EQ(a.tokenizer_fingerprint, b.tokenizer_fingerprint);
  EXPECT_EQ(a.adapter_fingerprint, b.adapter_fingerprint);
  EXPECT_EQ(a.adapter_domain, b.adapter_domain);
  EXPECT_EQ(a.adapter_mode, b.adapter_mode);
  EXPECT_EQ(a.arithmetic_version, b.arithmetic_version);
  EXPECT_EQ(a.total_bits, b.total_bits);
  EXPECT_EQ(a.chunk_tokens, b.chunk_tokens);
  EXPECT_EQ(a.group_streams, b.group_streams);
  EXPECT_EQ(a.context_fingerprint, b.context_fingerprint);
  EXPECT_EQ(a.prefix_tokens, b.prefix_tokens);
  EXPECT_EQ(a.original_bytes, b.original_bytes);
  EXPECT_EQ(a.original_xxh64, b.original_xxh64);
  ASSERT_EQ(a.chunks.size(), b.chunks.size());
  for (size_t i = 0; i < a.chunks.size(); ++i) {
    EXPECT_EQ(a.chunks[i].n_tokens, b.chunks[i].n_tokens) << "chunk " << i;
    EXPECT_EQ(a.chunks[i].payload, b.chunks[i].payload) << "chunk " << i;
  }
}

// The error message parse() gives, or "" when it accepts.
std::string parse_error(const std::string& bytes) {
  try {
    Container::parse(bytes, "f.lrz");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_REFUSED(bytes, fragment)                                              \
  do {                                                                               \
    const std::string msg_ = parse_error(bytes);                                     \
    EXPECT_NE(msg_.find("f.lrz: "), std::string::npos) << "names the file: " << msg_; \
    EXPECT_NE(msg_.find(fragment), std::string::npos) << "message: " << msg_;        \
  } while (0)

// ---- an independent writer that follows docs/container-format.md, to craft hostile files
// with correct checksums ----

std::string varint(uint64_t v) {
  std::string s;
  do {
    uint8_t b = v & 0x7F;
    v >>= 7;
    if (v) b |= 0x80;
    s.push_back(static_cast<char>(b));
  } while (v);
  return s;
}
std::string le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return s;
}
std::string str(const std::string& x) { return varint(x.size()) + x; }
std::string fp(const std::string& hex) {  // length byte, then the digest's raw bytes
  std::string s(1, static_cast<char>(hex.size() / 2));
  for (size_t i = 0; i < hex.size(); i += 2) s.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return s;
}

struct Raw {  // each header field as encoded bytes; edit any of them
  std::string version = le(2, 1);
  std::string flags = le(0, 4), total_bits = le(17, 1), adapter_mode = le(0, 1), arithmetic_version = le(1, 1);
  std::string chunk_tokens = varint(64), group_streams = varint(4), original_bytes = varint(11);
  std::string original_xxh64 = le(xxh64("hello world"), 8);
  std::string base_fp = fp(sha256_hex("b")), tokenizer_fp = fp(sha256_hex("t"));
  std::string adapter_fp = fp(""), domain = str("");
  std::string payload = "abcdefg";
  std::string payload_bytes = varint(7);
  std::string payload_xxh64;  // empty: computed from `payload`
  std::string n_chunks = varint(2);
  std::string table = varint(5) + varint(3) + varint(64) + varint(4);
  std::string reserved;
  std::string header_len;  // empty: the body's real length
};

std::string craft(const std::function<void(Raw&)>& edit = nullptr) {
  Raw r;
  if (edit) edit(r);
  const std::string pxx = r.payload_xxh64.empty() ? le(xxh64(r.payload), 8) : r.payload_xxh64;
  const std::string body = r.flags + r.total_bits + r.adapter_mode + r.arithmetic_version + r.chunk_tokens +
                           r.group_streams + r.original_bytes + r.original_xxh64 + r.base_fp +
                           r.tokenizer_fp + r.adapter_fp + r.domain + r.payload_bytes + pxx +
                           r.n_chunks + r.table + r.reserved;
  std::string out = "LRZP" + r.version + (r.header_len.empty() ? le(body.size(), 4) : r.header_len) + body;
  out += le(xxh64(out), 8);
  return out + r.payload;
}

// ---- tests ----

TEST(Container, RoundTripKeepsEveryField) {
  const Container c = sample();
  const std::string bytes = c.serialize();
  const Container back = Container::parse(bytes, "f.lrz");
  expect_same(c, back);
  EXPECT_EQ(back.total_tokens(), 143u);
  EXPECT_EQ(back.payload_bytes(), c.payload_bytes());
  EXPECT_EQ(back.serialize(), bytes);
}

TEST(Container, SerializingTwiceGivesIdenticalBytes) {
  EXPECT_EQ(sample().serialize(), sample().serialize());
}

TEST(Container, HeaderOnlyParseNeedsNoPayload) {
  const Container c = sample();
  const std::string bytes = c.serialize();
  const size_t header_end = bytes.size() - static_cast<size_t>(c.payload_bytes());
  std::vector<uint64_t> sizes;
  const Container h = Container::parse_header_only(bytes.substr(0, header_end), "f.lrz", &sizes);
  EXPECT_EQ(h.adapter_domain, "math");
  EXPECT_EQ(h.total_tokens(), 143u);
  ASSERT_EQ(sizes.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(sizes[i], c.chunks[i].payload.size());
    EXPECT_TRUE(h.chunks[i].payload.empty());
  }
  EXPECT_THROW(Container::parse_header_only(bytes.substr(0, header_end - 1), "f.lrz"), std::runtime_error);
  EXPECT_THROW(Container::parse(bytes.substr(0, header_end), "f.lrz"), std::runtime_error);
}

TEST(Container, EmptyInputHasNoChunks) {
  Container c = sample();
  c.chunks.clear();
  c.original_bytes = 0;
  const Container back = Container::parse(c.serialize(), "f.lrz");
  expect_same(c, back);
}

TEST(Container, IndependentWriterMatchesTheSpec) {
  // The test's own writer, written from docs/container-format.md, produces a file that parses.
  const Container c = Container::parse(craft(), "f.lrz");
  EXPECT_EQ(c.total_bits, 17);
  EXPECT_EQ(c.original_bytes, 11u);
  ASSERT_EQ(c.chunks.size(), 2u);
  EXPECT_EQ(c.chunks[0].n_tokens, 5u);
  EXPECT_EQ(c.chunks[0].payload, "abc");
  EXPECT_EQ(c.chunks[1].n_tokens, 64u);
  EXPECT_EQ(c.chunks[1].payload, "defg");
  EXPECT_EQ(c.serialize(), craft()) << "the library writes exactly the specified bytes";
}

TEST(Container, RefusesFilesThatAreNotLorazip) {
  EXPECT_REFUSED("", "truncated: the file is empty");
  EXPECT_REFUSED("PK\x03\x04 zip file", "not a lorazip file (bad magic");
  EXPECT_REFUSED("LRZ", "truncated");
  EXPECT_REFUSED("LRX", "bad magic");
  std::string bytes = sample().serialize();
  bytes[0] = 'l';
  EXPECT_REFUSED(bytes, "bad magic");
}

TEST(Container, RefusesVersionOneNamingTheCpuDependentPath) {
  std::string bytes = sample().serialize();
  bytes[4] = 1;
  EXPECT_REFUSED(bytes, "written by the CPU-dependent BLAS path of lorazip 0.1");
  EXPECT_REFUSED(bytes.substr(0, 5), "BLAS path");  // known from byte 4 alone
}

TEST(Container, RefusesOtherVersions) {
  for (int v : {0, 3, 255}) {
    std::string bytes = sample().serialize();
    bytes[4] = static_cast<char>(v);
    EXPECT_REFUSED(bytes, "unsupported version " + std::to_string(v));
  }
}

TEST(Container, RefusesEveryTruncation) {
  const std::string bytes = sample().serialize();
  for (size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE("prefix " + std::to_string(n) + " of " + std::to_string(bytes.size()));
    EXPECT_REFUSED(bytes.substr(0, n), "truncated");
  }
}

TEST(Container, RefusesTrailingBytes) {
  EXPECT_REFUSED(sample().serialize() + "x", "1 unexpected bytes after the payload");
  EXPECT_REFUSED(sample().serialize() + sample().serialize(), "unexpected bytes after the payload");
}

TEST(Container, EveryFlippedByteIsCaught) {
  // Small file: every byte, three flip patterns. Payload bytes must be caught by the payload
  // checksum; everything else is refused by some header check.
  Container c = sample();
  c.chunks = {fuzz_seeds::coded_chunk(20, 9), fuzz_seeds::coded_chunk(7, 10)};
  const std::string bytes = c.serialize();
  const size_t payload_start = bytes.size() - static_cast<size_t>(c.payload_bytes());
  ASSERT_GT(c.payload_bytes(), 0u);
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (int mask : {0x01, 0x80, 0xFF}) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      const std::string msg = parse_error(bad);
      ASSERT_FALSE(msg.empty()) << "byte " << i << " ^ " << mask << " was accepted";
      if (i >= payload_start) {
        EXPECT_NE(msg.find("payload checksum mismatch (file corrupted)"), std::string::npos) << msg;
      }
    }
  }
}

TEST(Container, HeaderChecksumCatchesAChangedField) {
  std::string bytes = sample().serialize();
  bytes[9 + 4] ^= 0x01;  // total_bits
  EXPECT_REFUSED(bytes, "header checksum mismatch");
}

TEST(Container, RefusesAbsurdCountsAndLengths) {
  // Each file below has correct checksums, so only the field checks stand between it and a
  // huge allocation or an out-of-bounds slice.
  EXPECT_REFUSED(craft([](Raw& r) { r.n_chunks = varint(uint64_t{1} << 60); }), "chunks cannot fit");
  EXPECT_REFUSED(craft([](Raw& r) { r.n_chunks = varint(3); }), "3 chunks cannot fit the 4 bytes");
  EXPECT_REFUSED(craft([](Raw& r) { r.n_chunks = varint(3); r.reserved = "\x81\x81"; }), "truncated header");
  EXPECT_REFUSED(craft([](Raw& r) { r.header_len = le(0xFFFFFFFFu, 4); }), "truncated: the header needs");
  EXPECT_REFUSED(craft([](Raw& r) { r.domain = varint(uint64_t{1} << 40) + "x"; }), "exceeds the limit");
  EXPECT_REFUSED(craft([](Raw& r) { r.domain = varint(300) + std::string(300, 'a'); }), "exceeds the limit");
  EXPECT_REFUSED(craft([](Raw& r) { r.base_fp = std::string(1, '\xff') + std::string(255, 'a'); }),
                 "field 'base_fingerprint' has length 255");
  EXPECT_REFUSED(craft([](Raw& r) { r.payload_bytes = varint(uint64_t{1} << 62); }),
                 "chunk table covers 7 payload bytes");
  EXPECT_REFUSED(craft([](Raw& r) { r.table = varint(5) + varint(3) + varint(64) + varint(1u << 30); }),
                 "chunk table exceeds the 7 payload bytes at chunk 1");
  EXPECT_REFUSED(craft([](Raw& r) { r.table = varint(5) + varint(3) + varint(64) + varint(3); }),
                 "covers 6 payload bytes but the header says 7");
  EXPECT_REFUSED(craft([](Raw& r) { r.table = varint(65) + varint(3) + varint(64) + varint(4); }),
                 "chunk 0 has 65 tokens, more than the chunk limit 64");
  EXPECT_REFUSED(craft([](Raw& r) { r.payload_bytes = varint(8); r.table = varint(5) + varint(4) + varint(64) + varint(4); }),
                 "truncated: the payload needs 8 bytes, 7 present");
  EXPECT_REFUSED(craft([](Raw& r) { r.chunk_tokens = varint(uint64_t{1} << 63); }),
                 "chunk_tokens 9223372036854775808 outside [1, 2147483647]");
  EXPECT_REFUSED(craft([](Raw& r) { r.chunk_tokens = varint(0); }), "chunk_tokens 0 outside [1,");
  EXPECT_REFUSED(craft([](Raw& r) { r.group_streams = varint(0); }), "group_streams 0 outside");
  EXPECT_REFUSED(craft([](Raw& r) { r.group_streams = varint((1u << 20) + 1); }), "group_streams");
  EXPECT_REFUSED(craft([](Raw& r) { r.total_bits = le(0, 1); }), "total_bits 0 outside [1, 28]");
  EXPECT_REFUSED(craft([](Raw& r) { r.total_bits = le(29, 1); }), "total_bits 29 outside");
}

TEST(Container, RefusesInconsistentOrUnknownFields) {
  EXPECT_REFUSED(craft([](Raw& r) { r.arithmetic_version = le(0, 1); }), "arithmetic_version 0 outside [1, 255]");
  EXPECT_REFUSED(craft([](Raw& r) { r.adapter_mode = le(3, 1); }), "unknown adapter mode 3");
  EXPECT_REFUSED(craft([](Raw& r) { r.adapter_mode = le(1, 1); }),
                 "adapter mode 'merged' does not agree with an empty adapter fingerprint");
  EXPECT_REFUSED(craft([](Raw& r) { r.adapter_fp = fp(sha256_hex("a")); }),
                 "adapter mode 'none' does not agree with a non-empty adapter fingerprint");
  EXPECT_REFUSED(craft([](Raw& r) { r.base_fp = std::string(1, '\x14') + std::string(20, 'a'); }),
                 "field 'base_fingerprint' has length 20 (a SHA-256 fingerprint has 32 bytes");
  EXPECT_REFUSED(craft([](Raw& r) { r.tokenizer_fp = std::string(1, '\x20') + "short"; }),
                 "truncated header: field 'tokenizer_fingerprint'");
  EXPECT_REFUSED(craft([](Raw& r) { r.flags = le(8, 4); }), "flags 0x00000008 name features");
  EXPECT_REFUSED(craft([](Raw& r) { r.flags = le(0x8003, 4); }), "flags 0x00008003 name features");
  EXPECT_REFUSED(craft([](Raw& r) { r.chunk_tokens = std::string("\x80\x00", 2); }), "non-canonical varint");
  EXPECT_REFUSED(craft([](Raw& r) { r.original_bytes = std::string(10, '\xff') + '\x01'; }), "overflows 64 bits");
  EXPECT_REFUSED(craft([](Raw& r) { r.original_bytes = std::string(9, '\xff') + '\x02'; }), "overflows 64 bits");
}

TEST(Container, AcceptsOptionalFlagsAndReservedHeaderBytes) {
  // Forward compatibility: optional flag bits and extra header bytes of a later minor revision
  // are skipped by this reader.
  const Container c = Container::parse(craft([](Raw& r) {
    r.flags = le(0x80010000u, 4);
    r.reserved = "future fields";
  }), "f.lrz");
  EXPECT_EQ(c.flags, 0x80010000u);
  EXPECT_EQ(c.chunks.size(), 2u);
  EXPECT_EQ(c.original_bytes, 11u);
}

TEST(Container, DummyPrefixAndChunkContextFlags) {
  // Bit 0 (dummy prefix) has no field; bit 1 (chunk context) puts context_tokens after the table.
  EXPECT_EQ(Container::parse(craft([](Raw& r) { r.flags = le(1, 4); }), "f.lrz").flags, kFlagDummyPrefix);
  const auto windowed = [](uint64_t w, uint64_t second) {
    return [=](Raw& r) {
      r.flags = le(2, 4);
      r.table = varint(64) + varint(3) + varint(second) + varint(4);
      r.reserved = varint(w);
    };
  };
  const Container c = Container::parse(craft(windowed(16, 48)), "w.lrz");
  EXPECT_EQ(c.context_tokens, 16);
  EXPECT_EQ(c.chunk_limit(0), 64);
  EXPECT_EQ(c.chunk_limit(1), 48);
  EXPECT_EQ(c.serialize(), craft(windowed(16, 48))) << "the writer puts the field where the spec says";
  EXPECT_REFUSED(craft(windowed(16, 49)), "chunk 1 has 49 tokens, more than chunk_tokens - context_tokens = 48");
  EXPECT_REFUSED(craft(windowed(0, 48)), "context_tokens 0 outside [1, chunk_tokens - 1 = 63]");
  EXPECT_REFUSED(craft(windowed(64, 1)), "context_tokens 64 outside [1, chunk_tokens - 1 = 63]");
  EXPECT_REFUSED(craft([](Raw& r) { r.flags = le(2, 4); }), "truncated header: field 'context_tokens'");
  // Without the flag the same bytes are reserved and skipped: W stays 0.
  EXPECT_EQ(Container::parse(craft([](Raw& r) { r.reserved = varint(16); }), "f.lrz").context_tokens, 0);
  Container bad = c;
  bad.flags = 0;
  EXPECT_THROW(bad.serialize(), std::invalid_argument);  // W without its flag
  bad = c;
  bad.context_tokens = 0;
  EXPECT_THROW(bad.serialize(), std::invalid_argument);  // flag without W
  bad = c;
  bad.chunks[1].n_tokens = 49;
  EXPECT_THROW(bad.serialize(), std::invalid_argument);  // past chunk_tokens - W
}

TEST(Container, ContextFlagHoldsTheFingerprintAndPrefixAfterTheTable) {
  // Bit 2 (context): the context's fingerprint and the first chunk's prefix length after the
  // table (after context_tokens when bit 1 is set too); chunk 0 then holds chunk_tokens - prefix.
  const std::string ctx_fp = sha256_hex("the prompt");
  const auto given = [&](uint64_t prefix) {
    return [=](Raw& r) {
      r.flags = le(4, 4);
      r.reserved = fp(ctx_fp) + varint(prefix);
    };
  };
  const Container c = Container::parse(craft(given(10)), "c.lrz");
  EXPECT_EQ(c.flags, kFlagContext);
  EXPECT_EQ(c.context_fingerprint, ctx_fp);
  EXPECT_EQ(c.prefix_tokens, 10);
  EXPECT_EQ(c.chunk_limit(0), 54);
  EXPECT_EQ(c.serialize(), craft(given(10))) << "the writer puts the fields where the spec says";
  EXPECT_REFUSED(craft(given(62)), "chunk 0 has 5 tokens, more than chunk_tokens - prefix_tokens = 2");
  EXPECT_REFUSED(craft(given(64)), "prefix_tokens 64 outside [0, chunk_tokens - 1 = 63]");
  EXPECT_REFUSED(craft([](Raw& r) { r.flags = le(4, 4); }), "truncated header: field 'context_fingerprint'");
  EXPECT_REFUSED(craft([](Raw& r) {
    r.flags = le(4, 4);
    r.reserved = fp("") + varint(0);
  }), "flag bit 2 (context) is set but context_fingerprint is empty");
  // With bit 1 as well: context_tokens first.
  const Container both = Container::parse(craft([&](Raw& r) {
    r.flags = le(6, 4);
    r.table = varint(54) + varint(3) + varint(40) + varint(4);
    r.reserved = varint(16) + fp(ctx_fp) + varint(10);
  }), "b.lrz");
  EXPECT_EQ(both.context_tokens, 16);
  EXPECT_EQ(both.prefix_tokens, 10);
  EXPECT_EQ(Container::parse(both.serialize(), "b.lrz").context_fingerprint, ctx_fp);
  // Without the flag the same bytes are reserved and skipped.
  EXPECT_TRUE(Container::parse(craft([&](Raw& r) { r.reserved = fp(ctx_fp) + varint(10); }), "f.lrz").context_fingerprint.empty());
  Container bad = c;
  bad.flags = 0;
  EXPECT_THROW(bad.serialize(), std::invalid_argument);  // a fingerprint without its flag
  bad = c;
  bad.context_fingerprint.clear();
  EXPECT_THROW(bad.serialize(), std::invalid_argument);  // the flag without a fingerprint
  bad = c;
  bad.context_fingerprint = "abc";
  EXPECT_THROW(bad.serialize(), std::invalid_argument);
  bad = c;
  bad.prefix_tokens = 64;
  EXPECT_THROW(bad.serialize(), std::invalid_argument);
  bad = c;
  bad.prefix_tokens = 60;
  EXPECT_THROW(bad.serialize(), std::invalid_argument);  // chunk 0's 5 tokens past 64 - 60
}

TEST(Container, SerializeRefusesWhatParseWouldRefuse) {
  auto bad = [](const std::function<void(Container&)>& edit) {
    Container c = sample();
    edit(c);
    EXPECT_THROW(c.serialize(), std::invalid_argument);
  };
  bad([](Container& c) { c.total_bits = 0; });
  bad([](Container& c) { c.arithmetic_version = 0; });
  bad([](Container& c) { c.total_bits = kMaxTotalBits + 1; });
  bad([](Container& c) { c.chunk_tokens = 0; });
  bad([](Container& c) { c.group_streams = 0; });
  bad([](Container& c) { c.base_fingerprint = "abc"; });
  bad([](Container& c) { c.base_fingerprint = std::string(64, 'G'); });
  bad([](Container& c) { c.tokenizer_fingerprint = std::string(64, 'A'); });  // upper case
  bad([](Container& c) { c.adapter_fingerprint.clear(); });  // mode is Merged
  bad([](Container& c) { c.adapter_mode = AdapterMode::None; });
  bad([](Container& c) { c.adapter_domain = std::string(256, 'd'); });
  bad([](Container& c) { c.flags = 0x8; });
  bad([](Container& c) { c.chunks[0].n_tokens = 101; });
}

TEST(Container, GoldenFilesStillParseAndAreReproduced) {
  // codec/fuzz/corpus/ holds files written by make_fuzz_corpus; today's code must read them and
  // write the very same bytes (the format has not drifted), and their chunks decode cleanly.
  const std::string dir = std::string(LORAZIP_SOURCE_DIR) + "/codec/fuzz/corpus/";
  int bits = 0;
  const auto& cdf = fuzz_seeds::zipf_cdf(&bits);
  for (const auto& [file, c] : fuzz_seeds::seed_containers()) {
    const std::string golden = read_file(dir + file);
    EXPECT_EQ(c.serialize(), golden) << file << " would be written differently today";
    const Container back = Container::parse(golden, file);
    expect_same(c, back);
    for (const auto& ch : back.chunks) {
      RangeDecoder dec(reinterpret_cast<const uint8_t*>(ch.payload.data()), ch.payload.size());
      for (uint32_t i = 0; i < ch.n_tokens; ++i) {
        const int s = find_symbol(cdf.data(), fuzz_seeds::kSymbols, dec.target(bits));
        dec.consume(cdf[s], cdf[s + 1] - cdf[s], bits);
      }
      EXPECT_FALSE(dec.overrun()) << file;
    }
  }
}

}  // namespace
}  // namespace lorazip
