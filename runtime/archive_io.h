// Archives with the model: coding documents into members (per-document adapter routing, the
// stored fallback), creating an archive, appending to one without rewriting its members, and
// decoding one member from its own bytes. The format itself is codec/archive.h; the CLI
// (`lorazip archive create|add|list|extract|test`) calls these functions.
#pragma once
#include <exception>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "codec/archive.h"
#include "codec/turns.h"
#include "runtime/selector.h"

namespace lorazip {

class ProgressMeter;

// One document to store: its name inside the archive and its bytes. JSONL records carry the
// bytes around their text (see split_jsonl_record) and `bytes` is the text alone.
struct ArchiveDocument {
  std::string name;
  std::string bytes;
  bool jsonl = false;
  bool raw_line = false, ascii_escapes = false, no_newline = false;
  std::string prefix, suffix;
  // A conversation record (documents_from_jsonl with conversations): its turns, in the order they
  // stand in the line (`bytes` and `prefix` unused; `suffix` follows the last turn).
  std::vector<JsonlTurn> turns;
};
inline ArchiveDocument file_document(std::string name, std::string bytes) {
  ArchiveDocument d;
  d.name = std::move(name);
  d.bytes = std::move(bytes);
  return d;
}

// Every regular file under each path (a file names itself), in sorted order, named by its path
// relative to the directory given (a file given directly: its file name). std::invalid_argument
// for a path that does not exist.
std::vector<ArchiveDocument> documents_from_paths(const std::vector<std::string>& paths);
// The records of a JSONL file, one per line, each split into its text and the bytes around it
// (or kept whole when its text cannot be rebuilt byte for byte); named "line N" (from 1).
// With `conversations`, a record split_conversation_record splits is one document of several turns.
std::vector<ArchiveDocument> documents_from_jsonl(const std::string& bytes, bool conversations = false);



// Which adapter codes each document is the AdapterSelector's (fixed or fewest bits; an archive's
// members are compact files, so routing by prompt is refused).
struct ArchiveCodingOptions {
  int version = kArchiveVersion;         // create: the archive version to write (1: what readers before version 2 read); add keeps the archive's
  int64_t chunk_tokens = 0;              // 0 = the model's default; used by create only (add keeps the archive's)
  int64_t context_tokens = -1;
  int threads = 0;
  // create: a conversation archive (kArchiveConversations) whose turns render in `turn_template`
  // (add follows the archive's). Coding or decoding a conversation archive needs `renderers`.
  bool conversations = false;
  ArchiveTurnTemplate turn_template = ArchiveTurnTemplate::Plain;
  TurnRendererFactory renderers;
};

struct ArchiveWriteStats {
  size_t members = 0, stored = 0;
  uint64_t input_bytes = 0, data_bytes = 0, file_bytes = 0;
  double ideal_bits = 0;  // summed over coded members (the model's code length of their tokens)
  size_t records = 0;     // JSONL records (a conversation record holds several members)
  // Conversations: per role ("" for turns with none), the turns' bytes in and data bytes out.
  struct RoleBytes {
    size_t turns = 0;
    uint64_t input_bytes = 0, data_bytes = 0;
    double ideal_bits = 0;
  };
  std::vector<std::pair<std::string, RoleBytes>> by_role;
};

// Writes a new archive at `path` (temporary file + rename; an existing file is replaced only with
// `force`). All documents must be JSONL records or none.
ArchiveWriteStats archive_create(const std::string& path, AdapterSelector& selector, const std::vector<ArchiveDocument>& docs,
                                 const ArchiveCodingOptions& opt, bool force);
// Appends documents: their data goes after the archive's last bytes, then a new index and footer;
// the members already there are not rewritten. On an error the file is cut back to its old size.
// An archive that ends with an incomplete append (an earlier add killed mid-write) is refused
// (ArchiveIncompleteAppend, naming `lorazip archive repair`) before anything is coded or written.
ArchiveWriteStats archive_add(const std::string& path, AdapterSelector& selector, const std::vector<ArchiveDocument>& docs,
                              const ArchiveCodingOptions& opt);

// Member k's document (a JSONL record: the whole line with its newline), read from the member's
// own byte range only, decoded with the adapter it names (decode_any: the selector's -a, or found
// under its -A by tag). std::runtime_error naming the member when its data or checksum is wrong.
// In a conversation archive, the whole record member k belongs to (every turn of it decoded in
// conversation order, each given the turns before it): `renderers` must be given.
std::string archive_extract_member(const ByteSource& src, const ArchiveLayout& layout, size_t k, AdapterSelector& selector,
                                   int threads, const std::string& archive_name, const TurnRendererFactory& renderers = nullptr);


// Members `which` at once: the coded ones decode together (every member's chunks in the same
// engine calls, LmCodec::decompress_many), `progress` (when given) counting their tokens. One
// result per member, in order: its document as archive_extract_member gives it, or the error it
// would throw. The same bytes as extracting them one by one.
struct ArchiveExtracted {
  std::string doc;
  std::exception_ptr error;
};
std::vector<ArchiveExtracted> archive_extract_members(const ByteSource& src, const ArchiveLayout& layout,
                                                     const std::vector<size_t>& which, AdapterSelector& selector, int threads,
                                                     const std::string& archive_name, ProgressMeter* progress = nullptr,
                                                     const TurnRendererFactory& renderers = nullptr);

}  // namespace lorazip
