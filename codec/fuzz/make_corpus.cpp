// Writes the fuzz targets' seed corpora: one valid container per file from codec/fuzz/seeds.h
// (also the container golden files), and with a second directory, compact files and archives
// for fuzz_compact and fuzz_archive. Usage: make_fuzz_corpus <output-dir> [<compact-and-archive-dir>]
#include <cstdio>
#include <exception>
#include <string>

#include "codec/archive.h"
#include "codec/compact.h"
#include "codec/fuzz/seeds.h"
#include "common/fs.h"

namespace {

void write_seed(const std::string& path, const std::string& bytes) {
  lorazip::write_file_atomic(path, bytes);
  std::printf("%s  %zu bytes\n", path.c_str(), bytes.size());
}

void write_new_format_seeds(const std::string& dir) {
  using namespace lorazip;
  CompactFile stored;
  stored.stored = true;
  stored.stored_bytes = "stored bytes \x01\x02\xff";
  write_seed(dir + "/stored4.lrz", stored.serialize());
  stored.version = kCompactVersionLegacy;
  write_seed(dir + "/stored.lrz", stored.serialize());
  CompactFile coded;
  coded.version = kCompactVersionLegacy;
  coded.dummy_prefix = true;
  coded.arithmetic_version = 1;
  coded.base_tag = 0xa1b2;
  coded.tokenizer_tag = 0xc3;
  coded.has_adapter = true;
  coded.adapter_tag = 0xd4e5;
  coded.chunk_tokens = 40;
  coded.context_tokens = 10;
  coded.original_bytes = 300;
  coded.n_tokens = 90;
  coded.original_check = 0x12345678;
  coded.chunks = {"first chunk payload", "second", "third and last"};
  write_seed(dir + "/coded3.lrz", coded.serialize());
  coded.version = kCompactVersion;
  coded.adapter_tag = 0xd4;  // version 4: one byte
  write_seed(dir + "/coded4.lrz", coded.serialize_sealed("the original"));
  coded.chunk_tokens = 0;
  coded.has_adapter = false;
  coded.chunks = {"one chunk"};
  coded.n_tokens = 5;
  write_seed(dir + "/coded4-one-chunk.lrz", coded.serialize_sealed("other"));
  coded.version = kCompactVersionContext;  // coded given a context: its tag after the (absent) adapter tag
  coded.context_tag = 0x47c4;
  write_seed(dir + "/coded5.lrz", coded.serialize_sealed("given a prompt"));
  coded.has_adapter = true;
  coded.adapter_tag = 0xd4;
  coded.chunk_tokens = 40;
  coded.context_tokens = 10;
  coded.n_tokens = 90;
  coded.chunks = {"first chunk payload", "second", "third and last"};
  write_seed(dir + "/coded5-adapter-chunks.lrz", coded.serialize_sealed("the original"));

  for (int variant = 0; variant < 4; ++variant) {
    const bool jsonl = variant & 1;
    const int version = variant & 2 ? kArchiveVersionLegacy : kArchiveVersion;
    const std::string v = version == kArchiveVersion ? "" : "-v1";
    ArchiveHeader h;
    h.version = version;
    h.flags = jsonl ? kArchiveJsonl : 0;
    h.arithmetic_version = 1;
    h.base_tag = 0xa1b2;
    h.tokenizer_tag = 0xc3;
    std::string file = h.serialize();
    ArchiveIndex ix;
    ix.adapters.push_back({0xd4e5, "chat"});
    ArchiveMember stored_member;
    stored_member.name = jsonl ? "line 1" : "a/stored.bin";
    stored_member.data_len = 5;
    stored_member.original_bytes = 5;
    stored_member.check = check32("hello");
    stored_member.prefix = "{\"text\": ";
    stored_member.suffix = ", \"model\": \"m\"}";
    file += "hello";
    ArchiveMember coded_member;
    coded_member.name = jsonl ? "line 2" : "b/coded.txt";
    coded_member.coded = true;
    coded_member.adapter = 1;
    coded_member.original_bytes = 100;
    coded_member.n_tokens = 30;
    coded_member.chunk_lens = {6, 4};
    coded_member.data_len = 10;
    coded_member.raw_line = jsonl;
    file += "0123456789";
    ix.members = {stored_member, coded_member};
    file += ix.serialize_with_footer(h);
    write_seed(dir + (jsonl ? "/records" : "/files") + v + ".lza", file);
    // The same archive with an `add` cut off halfway through its new index: what repair recovers.
    ArchiveMember added = stored_member;
    added.name = jsonl ? "line 3" : "c/added.bin";
    added.gap = file.size() - ix.layout(h.serialize().size());
    ix.members.push_back(added);
    const std::string tail = "hello" + ix.serialize_with_footer(h);
    write_seed(dir + (jsonl ? "/records-cut-add" : "/files-cut-add") + v + ".lza", file + tail.substr(0, tail.size() / 2));
  }

  // A conversation archive: a record of two turns (a stored prompt, a coded response in front of
  // it in the line), then a record of one turn with no role.
  {
    ArchiveHeader h;
    h.flags = kArchiveJsonl | kArchiveConversations;
    h.turn_template = ArchiveTurnTemplate::BaseTemplate;
    h.arithmetic_version = 2;
    h.base_tag = 0xa1b2;
    h.tokenizer_tag = 0xc3;
    std::string file = h.serialize();
    ArchiveIndex ix;
    ArchiveMember response;
    response.name = "line 1";
    response.coded = true;
    response.n_tokens = 12;
    response.chunk_lens = {7};
    response.data_len = 7;
    response.prefix = "{\"text\": ";
    response.role = "assistant";
    response.turn = 1;
    ArchiveMember prompt;
    prompt.name = "line 1";
    prompt.same_record = true;
    prompt.data_len = 5;
    prompt.check = check32("hello");
    prompt.prefix = ", \"prompt\": ";
    prompt.suffix = ", \"model\": \"m\"}";
    prompt.role = "user";
    ArchiveMember alone;
    alone.name = "line 2";
    alone.data_len = 3;
    alone.check = check32("one");
    alone.prefix = "{\"text\": ";
    alone.suffix = "}";
    alone.no_newline = true;
    file += "payload" "hello" "one";
    ix.members = {response, prompt, alone};
    file += ix.serialize_with_footer(h);
    write_seed(dir + "/conversations.lza", file);
    write_seed(dir + "/conversation-line.jsonl",
               "{\"id\": 1, \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"caf\\u00e9?\"}, "
               "{\"role\": \"assistant\", \"content\": null}, {\"content\": \"Yes.\", \"role\": \"assistant\"}], \"x\": [1]}");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: %s <output-dir> [<compact-and-archive-dir>]\n", argv[0]);
    return 2;
  }
  try {
    for (const auto& [file, c] : lorazip::fuzz_seeds::seed_containers()) {
      const std::string path = std::string(argv[1]) + "/" + file;
      const std::string bytes = c.serialize();
      lorazip::write_file_atomic(path, bytes);
      std::printf("%s  %zu bytes, %zu chunks\n", path.c_str(), bytes.size(), c.chunks.size());
    }
    if (argc == 3) write_new_format_seeds(argv[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_fuzz_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
