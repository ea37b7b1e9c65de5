// lorazip archives (.lza): many documents in one file, each coded on its own (a compact coded
// stream or the bytes themselves) with its adapter, behind one header; an index at the end says
// where each member's bytes lie, so one member is read and decoded without touching the others,
// and members are appended without rewriting the ones before. This header is the format alone
// (no model): header, index, footer, and reading through a ByteSource. Layout and refusals:
// docs/container-format.md ("Archives").
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "codec/compact.h"

namespace lorazip {

constexpr char kArchiveMagic[4] = {'L', 'R', 'Z', 'A'};
constexpr char kArchiveFooterMagic[4] = {'L', 'R', 'Z', 'E'};
constexpr uint8_t kArchiveVersion = 2;        // what `archive create` writes (columnar index, members sealed as version-4 files)
constexpr uint8_t kArchiveVersionLegacy = 1;  // read, and appended to in its own version
constexpr uint8_t kArchiveJsonl = 1u << 0;  // members are the "text" fields of JSONL records; the index holds the rest
// Conversations (version 2, with kArchiveJsonl): a record's turns (its "messages" contents, or its
// "prompt" and response) are members of their own, each coded given the turns before it rendered
// in the template the header names (ArchiveTurnTemplate); the index keeps each turn's role and place.
constexpr uint8_t kArchiveConversations = 1u << 1;
constexpr uint8_t kArchiveKnownFlags = kArchiveJsonl | kArchiveConversations;
constexpr size_t kArchiveFooterBytes = 16;  // index_len u64, index check32 u32, "LRZE"
constexpr size_t kMaxMemberName = 4096;
constexpr size_t kMaxArchiveAdapters = 4096;
constexpr size_t kMaxTurnRole = 255;  // bytes of a turn's role

// How a conversation archive renders the turns before a turn as its context (the header's byte):
// the prompt's own text (plain), ChatML with no system message, or the base's own chat template
// (a GGUF's tokenizer.chat_template, recognised as ChatML, with its default system message).
enum class ArchiveTurnTemplate : uint8_t { Plain = 0, ChatML = 1, BaseTemplate = 2 };

// Read access by offset (a file, or bytes in memory). Archive readers go through it so that what
// they touch can be counted (tests check that extracting one member reads only its bytes).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  // Exactly n bytes at `offset`; std::runtime_error when they are not there.
  virtual std::string read(uint64_t offset, size_t n) const = 0;
};
// A file opened read-only (pread); std::runtime_error naming it when it cannot be opened or read.
std::unique_ptr<ByteSource> open_file_source(const std::string& path);
std::unique_ptr<ByteSource> memory_source(std::string bytes);

struct ArchiveHeader {
  int version = kArchiveVersion;  // 2, or 1 (kArchiveVersionLegacy)
  uint8_t flags = 0;             // kArchiveJsonl
  int arithmetic_version = 0;    // 1..255 (version 2: 1..7, as its members expand to version-4 files)
  uint16_t base_tag = 0;         // fingerprint tags as in the compact file (codec/compact.h)
  uint8_t tokenizer_tag = 0;
  int64_t chunk_tokens = 0;      // 0: the model's defaults (then context_tokens is ignored)
  int64_t context_tokens = 0;
  ArchiveTurnTemplate turn_template = ArchiveTurnTemplate::Plain;  // kArchiveConversations only
  std::string serialize() const;  // magic, version, fields, check32
  // From the archive's first bytes (`bytes` may run past the header); sets *header_bytes.
  static ArchiveHeader parse(std::string_view bytes, const std::string& name, size_t* header_bytes);
};

struct ArchiveAdapter {
  uint16_t tag = 0;     // first two bytes of the adapter's fingerprint
  std::string domain;   // informational, <= 255 bytes
};

struct ArchiveMember {
  std::string name;             // path inside the archive, or "line N" for JSONL records
  bool coded = false;           // false: the data is the document itself
  bool dummy_prefix = false;    // coded with the tokenizer's dummy-prefix space
  uint32_t adapter = 0;         // 0 = the base alone, i = adapters[i - 1]
  uint64_t gap = 0;             // bytes between the previous member's data (or the header) and this one's
  uint64_t data_len = 0;        // bytes of this member's data
  uint64_t original_bytes = 0;  // the document's length (stored: data_len); version 2 does not record it for coded members (0)
  uint64_t n_tokens = 0;        // coded: tokens, all chunks
  std::vector<uint64_t> chunk_lens;  // coded: every chunk's payload size (they add up to data_len)
  // Stored members: check32 of the document. Coded members: version 1, check32 of the document;
  // version 2, the seal of the version-4 file the member expands to (compact_seal), which binds
  // the index fields, the payload and the decoded document.
  uint32_t check = 0;
  std::string prefix, suffix;   // JSONL: the record's bytes before and after the text's JSON string
  bool ascii_escapes = false;   // JSONL: the text was written with \uXXXX for every non-ASCII character
  bool raw_line = false;        // JSONL: the member is the whole line (no "text" string lorazip can rebuild)
  bool no_newline = false;      // JSONL: the record ends the file without a newline
  // Conversations: the member is a turn of a record. `same_record`: it continues the record of the
  // member before it (its name is that member's; the record's bytes are every turn's prefix and
  // JSON string in member order, then the last turn's suffix). `role`: the turn's role ("" only for
  // a record of one turn: a lone "text", coded from BOS alone). `turn`: its place in the
  // conversation (the order it is coded and rendered in; a record's turns hold 0..n-1 once each).
  bool same_record = false;
  std::string role;
  uint32_t turn = 0;
  uint64_t offset = 0;          // computed by ArchiveIndex::parse / layout(): where the data starts
};

struct ArchiveIndex {
  std::vector<ArchiveAdapter> adapters;
  std::vector<ArchiveMember> members;

  // Sets every member's offset from the gaps, starting at `data_start` (the header's end);
  // returns the end of the last member's data.
  uint64_t layout(uint64_t data_start);
  // The index block (zstd-compressed) in the layout of `h.version` and the 16-byte footer that
  // follows it. In a JSONL archive (h.flags) the members carry their records' prefix and suffix.
  std::string serialize_with_footer(const ArchiveHeader& h) const;
  // The index block `block` (its check32 already verified) of an archive with header `h`;
  // members' offsets laid out from `data_start`, each range checked against `data_end` (where the
  // index starts).
  static ArchiveIndex parse(std::string_view block, const std::string& name, uint64_t data_start, uint64_t data_end,
                            const ArchiveHeader& h);
};

// An archive's header and index, read through `src`: the header, the footer, the index block,
// nothing else. std::runtime_error naming `name` for anything malformed.
struct ArchiveLayout {
  ArchiveHeader header;
  size_t header_bytes = 0;
  ArchiveIndex index;
  uint64_t index_offset = 0;  // where the index block starts (appends write their data here)
};
// When the end of the file is not a complete footer + index (no "LRZE", an index that does not
// fit, an index checksum mismatch) but an earlier complete state is found looking backwards (what
// an `add` killed mid-write leaves), it throws ArchiveIncompleteAppend, which names
// `lorazip archive repair`; with no earlier state, the refusal of the end itself.
ArchiveLayout read_archive_layout(const ByteSource& src, const std::string& name);

// read_archive_layout's refusal of an archive whose last complete state (footer and index, as
// `create` or `add` wrote them) ends at `complete_end`, before the end of the file (`size`).
class ArchiveIncompleteAppend : public std::runtime_error {
 public:
  ArchiveIncompleteAppend(const std::string& name, uint64_t size, uint64_t complete_end, size_t members);
  uint64_t size = 0, complete_end = 0;
  size_t members = 0;  // in that last complete state
};

// What `lorazip archive repair` finds: an intact archive (nothing to cut), or the end of its last
// complete state. std::runtime_error (the reader's refusal, and that nothing can be cut back)
// when the file has neither.
struct ArchiveRepair {
  bool intact = false;
  uint64_t old_size = 0, kept_bytes = 0;
  size_t members = 0;  // in the state kept
};
ArchiveRepair find_archive_repair(const ByteSource& src, const std::string& name);
// find_archive_repair on the file at `path`, then, for an incomplete append, cuts the file back
// to its last complete state (ftruncate + fsync). An intact archive is left as it is.
ArchiveRepair repair_archive(const std::string& path);

// Whether a member name may become a path under an extraction directory: not empty, not absolute,
// no ".." component, no NUL byte ("a..b.txt" is fine, "a/../../b" is not). `create` and `add`
// refuse other names; extract_path checks again, since an archive may come from elsewhere.
bool safe_member_name(const std::string& name);
// Where `extract -C dir` writes member `name`: dir / name. std::runtime_error naming the archive and
// the member when the name is not safe_member_name (it would be written outside `dir`).
std::string extract_path(const std::string& dir, const std::string& name, const std::string& archive_name);

// Conversation archives: the first member of the record member k belongs to (k itself elsewhere).
size_t record_first_member(const ArchiveIndex& ix, size_t k);
// The members `names` name, in the order given (every member when `names` is empty); in a
// conversation archive (`conversations`) each record once, by its first member, since a record
// comes out whole. std::invalid_argument naming a name that is no member of `archive_name`.
std::vector<size_t> select_members(const ArchiveIndex& ix, bool conversations, const std::vector<std::string>& names,
                                   const std::string& archive_name);

// The member's data, read from its own byte range only.
std::string read_member_data(const ByteSource& src, const ArchiveMember& m);
// A coded member as the compact file it stands for, which the reader decodes: in a version-2
// archive a version-4 file whose seal is the member's check (the writer sets that check from
// this file: serialize_sealed(document)), in a version-1 archive a version-3 file. `data` is the
// member's data.
// A turn coded given a context expands to a version-5 file with `context_tag` (the first two bytes of
// the context's fingerprint, which the reader computes from the turns it decoded before).
CompactFile member_compact_file(const ArchiveHeader& h, const ArchiveIndex& ix, const ArchiveMember& m, std::string_view data,
                                std::optional<uint16_t> context_tag = std::nullopt);
// The name after `prev` in a numbered run ("line 9" -> "line 10", "doc09" -> "doc10"): its
// trailing decimal digits counted up by one; "" when `prev` does not end in a digit.
std::string next_member_name(const std::string& prev);

// JSONL records: `line` (without its newline) split into the text field's value and the bytes
// around its JSON string, when they rebuild the line exactly (join_jsonl_record); false when the
// line has no top-level "text" string or its escaping is neither of the two styles lorazip writes
// back (then the whole line is the member).
// The JSON string literal for `text` as Python's json.dumps writes it (ensure_ascii false or true).
std::string json_string_literal(std::string_view text, bool ascii_escapes);
bool split_jsonl_record(std::string_view line, std::string* text, std::string* prefix, std::string* suffix, bool* ascii_escapes);
std::string join_jsonl_record(std::string_view text, const std::string& prefix, const std::string& suffix, bool ascii_escapes);

// Conversation records. A line whose top-level object has a "messages" array of objects with
// "role" and "content" strings (every such message a turn, in array order; a message without
// them stays in the record's bytes and is no turn), or a "prompt" string with a "response",
// "completion", "output" or "text" string (the prompt a user turn, the other an assistant turn).
// The turns come in the order their strings stand in the line, each with the bytes before it;
// `suffix` is what follows the last. false when the line is neither shape or a turn's string (or
// role) does not rebuild byte for byte; then split_jsonl_record decides.
struct JsonlTurn {
  std::string text, role, prefix;
  uint32_t turn = 0;  // place in the conversation
  bool ascii_escapes = false;
};
bool split_conversation_record(std::string_view line, std::vector<JsonlTurn>* turns, std::string* suffix);
std::string join_conversation_record(const std::vector<JsonlTurn>& turns, const std::string& suffix);

}  // namespace lorazip
