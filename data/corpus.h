// Reading the raw corpus for `lorazip prepare`: JSONL records and plain-text files, each turned into
// documents that keep their bytes exactly (no normalization, no trimming). Every bad record is an
// error naming file:line, or (skip_bad_lines) a counted skip.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lorazip {

// One corpus input: a file or a directory, tagged with a domain.
struct InputSpec {
  std::string domain;               // group name in the token store: [A-Za-z0-9_.-], not starting with '.'
  std::string path;                 // a file, or a directory read recursively (hidden entries skipped)
  std::string format = "auto";      // auto (by extension: .jsonl/.ndjson = JSONL, else plain text) | jsonl | text
  std::string text_field = "text";  // JSONL: field holding the document (a string)
  bool messages = false;            // JSONL: take the assistant turns of "messages": [{role, content}], one doc each
  int64_t max_docs = 0;             // first N documents read from this input (before duplicate removal); 0 = all
};

struct Document {
  std::string bytes;  // exactly the document's bytes
  std::string where;  // "file:line" (JSONL) or "file" (plain text), for messages and debugging
};

struct CorpusReadResult {
  std::vector<Document> docs;
  std::vector<std::string> files;  // files read, in reading order
  int64_t lines_skipped = 0;       // bad JSONL records skipped (only with skip_bad_lines)
};

// Throws std::invalid_argument when the domain name cannot be an HDF5 group name.
void check_domain_name(const std::string& domain);

// Lists the files an input covers (sorted paths for a directory; hidden files and folders skipped).
// std::runtime_error naming the path when it does not exist.
std::vector<std::string> list_input_files(const std::string& path);

// Reads the documents of one input. Malformed JSON, a missing field or a non-string field is a
// std::runtime_error "file:line: ..." unless skip_bad_lines, in which case it is counted.
// Blank (whitespace-only) JSONL lines are ignored silently.
CorpusReadResult read_input(const InputSpec& in, bool skip_bad_lines);

// The documents of one file's bytes in JSONL form (exposed for tests); `name` is used in messages.
void parse_jsonl(const std::string& data, const std::string& name, const InputSpec& in, bool skip_bad_lines,
                 CorpusReadResult& out);

}  // namespace lorazip
