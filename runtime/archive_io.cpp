// Archives with the model (runtime/archive_io.h): documents in, members out, and back.
#include "runtime/archive_io.h"

#include "common/progress.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "codec/compact.h"
#include "runtime/selector.h"
#include "common/fs.h"

namespace fs = std::filesystem;

namespace lorazip {
namespace {

ArchiveWriteStats::RoleBytes& role_stats(ArchiveWriteStats& st, const std::string& role) {
  for (auto& [r, b] : st.by_role)
    if (r == role) return b;
  st.by_role.emplace_back(role, ArchiveWriteStats::RoleBytes{});
  return st.by_role.back().second;
}

// The member for `doc`, its data appended to `data`, coded under the archive's chunking (given
// `context` when not null: a conversation's turn).
ArchiveMember code_member(AdapterSelector& sel, const ArchiveDocument& doc, const ArchiveHeader& h, const ArchiveCodingOptions& opt,
                          ArchiveIndex& index, std::string& data, ArchiveWriteStats& st, const std::vector<int32_t>* context = nullptr) {
  const Chunking chunking =
      Chunking::of_archive(sel.codecs().base().config.max_position_embeddings, h.chunk_tokens, h.context_tokens);
  LmCodec& codec = *sel.pick(doc.bytes, chunking.chunk, chunking.window, nullptr, context).codec;
  LmCodecOptions co;
  co.chunk_tokens = chunking.chunk;
  co.context_tokens = chunking.window;
  co.threads = opt.threads;
  co.format = ContainerFormat::Compact;
  co.context = context;
  CodeStats cs;
  const CompactFile f = CompactFile::parse(codec.compress(doc.bytes, co, &cs), doc.name);
  ArchiveMember m;
  m.name = doc.name;
  m.raw_line = doc.raw_line;
  m.ascii_escapes = doc.ascii_escapes;
  m.no_newline = doc.no_newline;
  m.prefix = doc.prefix;
  m.suffix = doc.suffix;
  m.check = check32(doc.bytes);
  m.original_bytes = doc.bytes.size();
  const size_t data_start = data.size();
  if (f.stored) {
    m.data_len = f.stored_bytes.size();
    data += f.stored_bytes;
    ++st.stored;
  } else {
    m.coded = true;
    m.dummy_prefix = f.dummy_prefix;
    m.n_tokens = f.n_tokens;
    for (const auto& c : f.chunks) {
      m.chunk_lens.push_back(c.size());
      m.data_len += c.size();
      data += c;
    }
    st.ideal_bits += cs.ideal_bits;
    if (f.has_adapter) {
      // The archive's adapter table: one entry per adapter tag and domain.
      const CodecIdentity& id = codec.identity();
      const uint16_t tag = fingerprint_tag16(id.adapter_fingerprint);
      auto it = std::find_if(index.adapters.begin(), index.adapters.end(),
                             [&](const ArchiveAdapter& a) { return a.tag == tag && a.domain == id.adapter_domain; });
      if (it == index.adapters.end()) {
        index.adapters.push_back({tag, id.adapter_domain});
        it = index.adapters.end() - 1;
      }
      m.adapter = static_cast<uint32_t>(it - index.adapters.begin()) + 1;
    }
    if (h.version == kArchiveVersion) {
      // The member's check is the seal of the version-4 (given a context: version-5) file the
      // reader will rebuild from it.
      m.original_bytes = 0;
      std::optional<uint16_t> tag;
      if (f.version == kCompactVersionContext) tag = f.context_tag;
      m.check = member_compact_file(h, index, m, std::string_view(data).substr(data_start), tag).seal_for(doc.bytes);
    }
  }
  ++st.members;
  st.input_bytes += doc.bytes.size();
  st.data_bytes += m.data_len;
  return m;
}

// A conversation record's members (one per turn, in the order the turns stand in the line), each
// turn coded given the turns before it in the conversation; their data appended to `data` in
// member order.
std::vector<ArchiveMember> code_record(AdapterSelector& sel, const ArchiveDocument& doc, const ArchiveHeader& h, const ArchiveCodingOptions& opt,
                                       const TurnRenderer& renderer, ArchiveIndex& index, std::string& data, ArchiveWriteStats& st) {
  const size_t n = doc.turns.size();
  std::vector<size_t> at(n, n);  // member position of each turn
  for (size_t k = 0; k < n; ++k) {
    const uint32_t t = doc.turns[k].turn;
    if (t >= n || at[t] != n) throw std::invalid_argument(doc.name + ": its turns do not hold the places 0.." + std::to_string(n - 1) + " once each");
    at[t] = k;
  }
  std::vector<ArchiveMember> members(n);
  std::vector<std::string> bytes(n);
  std::vector<ConversationTurn> before;
  for (size_t t = 0; t < n; ++t) {
    const JsonlTurn& turn = doc.turns[at[t]];
    ArchiveDocument d;
    d.name = doc.name;
    d.bytes = turn.text;
    d.jsonl = true;
    d.prefix = turn.prefix;
    d.ascii_escapes = turn.ascii_escapes;
    const std::vector<int32_t> ctx = turn.role.empty() ? std::vector<int32_t>{} : renderer.context(before, turn.role);
    const uint64_t data_before = st.data_bytes;
    const double bits_before = st.ideal_bits;
    ArchiveMember m = code_member(sel, d, h, opt, index, bytes[at[t]], st, ctx.empty() ? nullptr : &ctx);
    m.role = turn.role;
    m.turn = static_cast<uint32_t>(t);
    m.same_record = at[t] > 0;
    ArchiveWriteStats::RoleBytes& rb = role_stats(st, turn.role);
    ++rb.turns;
    rb.input_bytes += turn.text.size();
    rb.data_bytes += st.data_bytes - data_before;
    rb.ideal_bits += st.ideal_bits - bits_before;
    members[at[t]] = std::move(m);
    before.push_back({turn.role, turn.text});
  }
  members.back().suffix = doc.suffix;
  members.back().no_newline = doc.no_newline;
  for (auto& b : bytes) data += b;
  return members;
}

// Codes `docs` into `index` (data appended to `file`): files and plain records one member each,
// conversation records one member per turn.
void code_documents(AdapterSelector& sel, const std::vector<ArchiveDocument>& docs, const ArchiveHeader& h, const ArchiveCodingOptions& opt,
                    ArchiveIndex& index, std::string& file, ArchiveWriteStats& st) {
  const bool conversations = (h.flags & kArchiveConversations) != 0;
  std::unique_ptr<TurnRenderer> renderer;
  if (conversations) {
    if (!opt.renderers) throw std::invalid_argument("a conversation archive needs a turn renderer (ArchiveCodingOptions::renderers)");
    renderer = opt.renderers(h.turn_template);
  }
  for (const auto& d : docs) {
    if (d.jsonl) ++st.records;
    if (!d.turns.empty()) {
      if (!conversations) throw std::invalid_argument(d.name + ": a conversation record in an archive that does not hold conversations");
      for (auto& m : code_record(sel, d, h, opt, *renderer, index, file, st)) index.members.push_back(std::move(m));
      continue;
    }
    const uint64_t data_before = st.data_bytes;
    const double bits_before = st.ideal_bits;
    index.members.push_back(code_member(sel, d, h, opt, index, file, st));
    if (conversations) {
      ArchiveWriteStats::RoleBytes& rb = role_stats(st, "");
      ++rb.turns;
      rb.input_bytes += d.bytes.size();
      rb.data_bytes += st.data_bytes - data_before;
      rb.ideal_bits += st.ideal_bits - bits_before;
    }
  }
}

// Archive members are compact files, which cannot carry the prompt-routed flag.
void check_coding_selector(const AdapterSelector& sel) {
  if (sel.kind() == AdapterSelector::Kind::ByPrompt)
    throw std::invalid_argument("an archive codes each document with -a's adapter or -A's cheapest; routing by prompt (--router) "
                                "is for single files");
}

void check_base(const ArchiveHeader& h, CodecSet& codecs, const std::string& name) {
  // An archive of arithmetic version 1 names a block-quantized base by its float32 fingerprint.
  CodecIdentity id = codecs.get("").identity();
  if (h.arithmetic_version == 1) id.base_fingerprint = codecs.base().float32_fingerprint();
  if (h.base_tag != fingerprint_tag16(id.base_fingerprint) || h.tokenizer_tag != fingerprint_tag8(id.tokenizer_fingerprint)) {
    char want[32];
    std::snprintf(want, sizeof want, "%04x / tokenizer %02x", h.base_tag, h.tokenizer_tag);
    throw std::runtime_error(name + ": the archive was made with a base model whose fingerprint begins " + want +
                             ", but the given base model is " + short_fp(id.base_fingerprint) + " / tokenizer " +
                             short_fp(id.tokenizer_fingerprint) + " (pass the -m that created it)");
  }
}

}  // namespace

std::vector<ArchiveDocument> documents_from_paths(const std::vector<std::string>& paths) {
  std::vector<ArchiveDocument> docs;
  for (const auto& p : paths) {
    if (fs::is_regular_file(p)) {
      docs.push_back(file_document(fs::path(p).filename().string(), read_file(p)));
      continue;
    }
    std::error_code ec;
    if (!fs::exists(p, ec)) throw std::invalid_argument(p + ": No such file or directory");
    if (!fs::is_directory(p)) throw std::invalid_argument("'" + p + "' is neither a file nor a directory");
    std::vector<std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(p))
      if (e.is_regular_file()) files.push_back(fs::relative(e.path(), p).generic_string());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) docs.push_back(file_document(f, read_file((fs::path(p) / f).string())));
  }
  for (const auto& d : docs)
    if (!safe_member_name(d.name) || d.name.size() > kMaxMemberName) throw std::invalid_argument("unsafe or too long member name '" + d.name + "'");
  return docs;
}

std::vector<ArchiveDocument> documents_from_jsonl(const std::string& bytes, bool conversations) {
  std::vector<ArchiveDocument> docs;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t nl = bytes.find('\n', pos);
    ArchiveDocument d;
    d.jsonl = true;
    d.name = "line " + std::to_string(docs.size() + 1);
    if (nl == std::string::npos) {
      d.no_newline = true;
      nl = bytes.size();
    }
    const std::string_view line(bytes.data() + pos, nl - pos);
    if (conversations && split_conversation_record(line, &d.turns, &d.suffix)) {
      docs.push_back(std::move(d));
      pos = nl + 1;
      continue;
    }
    d.turns.clear();
    if (!split_jsonl_record(line, &d.bytes, &d.prefix, &d.suffix, &d.ascii_escapes)) {
      d.raw_line = true;
      d.bytes = std::string(line);
      d.prefix.clear();
      d.suffix.clear();
    }
    docs.push_back(std::move(d));
    pos = nl + 1;
  }
  return docs;
}

ArchiveWriteStats archive_create(const std::string& path, AdapterSelector& sel, const std::vector<ArchiveDocument>& docs,
                                 const ArchiveCodingOptions& opt, bool force) {
  if (!force && fs::exists(path)) throw std::invalid_argument("'" + path + "' already exists; use -f to overwrite");
  check_coding_selector(sel);
  CodecSet& codecs = sel.codecs();
  const bool jsonl = !docs.empty() && docs[0].jsonl;
  for (const auto& d : docs)
    if (d.jsonl != jsonl) throw std::invalid_argument("an archive holds JSONL records or files, not both");
  const CodecIdentity& id = codecs.get("").identity();
  ArchiveHeader h;
  h.version = opt.version;
  h.flags = jsonl ? kArchiveJsonl : 0;
  if (opt.conversations) {
    if (!jsonl && !docs.empty()) throw std::invalid_argument("conversations are JSONL records: pass a JSONL file (--jsonl)");
    h.flags = kArchiveJsonl | kArchiveConversations;
    h.turn_template = opt.turn_template;
  }
  h.arithmetic_version = codecs.get("").model().arithmetic_version();
  h.base_tag = fingerprint_tag16(id.base_fingerprint);
  h.tokenizer_tag = fingerprint_tag8(id.tokenizer_fingerprint);
  // The header records the chunking only when it is not the model's default (chunk_tokens 0).
  const int64_t positions = codecs.get("").model().config().max_position_embeddings;
  const Chunking asked = Chunking::resolve(positions, opt.chunk_tokens, opt.context_tokens);
  const Chunking model_default = Chunking::resolve(positions, 0, kDefaultContextTokens);
  if (asked.chunk != model_default.chunk || asked.window != model_default.window) {
    h.chunk_tokens = asked.chunk;
    h.context_tokens = asked.window;
  }
  std::string file = h.serialize();
  ArchiveIndex index;
  ArchiveWriteStats st;
  code_documents(sel, docs, h, opt, index, file, st);
  file += index.serialize_with_footer(h);
  st.file_bytes = file.size();
  write_file_atomic(path, file);
  return st;
}

ArchiveWriteStats archive_add(const std::string& path, AdapterSelector& sel, const std::vector<ArchiveDocument>& docs,
                              const ArchiveCodingOptions& opt) {
  check_coding_selector(sel);
  ArchiveLayout L;
  {
    auto src = open_file_source(path);
    L = read_archive_layout(*src, path);
  }
  check_base(L.header, sel.codecs(), path);
  const bool jsonl = (L.header.flags & kArchiveJsonl) != 0;
  for (const auto& d : docs)
    if (d.jsonl != jsonl)
      throw std::invalid_argument("'" + path + "' holds " + (jsonl ? "JSONL records" : "files") + "; add " + (jsonl ? "a JSONL file with --jsonl" : "files"));
  uint64_t old_size = 0;
  {
    auto src = open_file_source(path);
    old_size = src->size();
  }
  std::string data;
  ArchiveWriteStats st;
  const size_t first_new = L.index.members.size();
  const uint64_t old_end = L.index.layout(L.header_bytes);  // end of the last member's data
  code_documents(sel, docs, L.header, opt, L.index, data, st);
  // The old index and footer stay where they are, as a gap before the first new member.
  if (first_new < L.index.members.size()) L.index.members[first_new].gap = old_size - old_end;
  const std::string tail = data + L.index.serialize_with_footer(L.header);

  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": cannot open for appending: " + std::strerror(errno));
  try {
    size_t done = 0;
    while (done < tail.size()) {
      const ssize_t w = ::pwrite(fd, tail.data() + done, tail.size() - done, static_cast<off_t>(old_size + done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) throw std::runtime_error(path + ": write error while appending: " + std::strerror(errno));
      done += static_cast<size_t>(w);
    }
    if (::fsync(fd) != 0) throw std::runtime_error(path + ": fsync failed while appending: " + std::strerror(errno));
  } catch (...) {
    if (::ftruncate(fd, static_cast<off_t>(old_size)) != 0) {
      // nothing more to do: the error below names the file
    }
    ::close(fd);
    throw;
  }
  ::close(fd);
  st.file_bytes = old_size + tail.size();
  return st;
}

namespace {

// A member's decoded document as a JSONL line when the archive holds records.
std::string member_document(const ArchiveLayout& L, const ArchiveMember& m, std::string doc) {
  if (!(L.header.flags & kArchiveJsonl)) return doc;
  std::string line = m.raw_line ? doc : join_jsonl_record(doc, m.prefix, m.suffix, m.ascii_escapes);
  if (!m.no_newline) line += '\n';
  return line;
}

}  // namespace

namespace {

// The records of a conversation archive that `which` names (any of their members), decoded round
// by round: round t decodes turn t of every record at once, each given the turns before it.
std::vector<ArchiveExtracted> extract_records(const ByteSource& src, const ArchiveLayout& L, const std::vector<size_t>& which,
                                              AdapterSelector& sel, int threads,
                                              const std::string& archive_name, ProgressMeter* progress, const TurnRendererFactory& renderers) {
  const auto& ms = L.index.members;
  std::vector<ArchiveExtracted> out(which.size());
  if (!renderers) throw std::invalid_argument(archive_name + ": holds conversations, and no turn renderer was given to decode them");
  std::unique_ptr<TurnRenderer> renderer;
  try {
    renderer = renderers(L.header.turn_template);
  } catch (const std::runtime_error& e) {
    // Most often the wrong base: say which one the archive was made with.
    char tag[16];
    std::snprintf(tag, sizeof tag, "%04x", L.header.base_tag);
    throw std::runtime_error(archive_name + ": cannot render its conversations' turns: " + e.what() +
                             " (the archive was made with a base whose fingerprint begins " + tag + ": pass the -m that created it)");
  }
  struct Record {
    size_t first = 0, end = 0;
    std::vector<size_t> by_turn;        // member of each turn
    std::vector<std::string> data;      // each member's data (member order)
    std::vector<std::string> text;      // each member's decoded text (member order)
    std::vector<ConversationTurn> before;
    std::exception_ptr error;
  };
  std::vector<Record> records;
  std::vector<size_t> record_of(which.size());
  std::vector<size_t> index_of_first(ms.size(), SIZE_MAX);
  for (size_t i = 0; i < which.size(); ++i) {
    if (which[i] >= ms.size()) {
      out[i].error = std::make_exception_ptr(std::invalid_argument("member " + std::to_string(which[i]) + " is not in " + archive_name));
      record_of[i] = SIZE_MAX;
      continue;
    }
    const size_t first = record_first_member(L.index, which[i]);
    if (index_of_first[first] == SIZE_MAX) {
      Record r;
      r.first = first;
      r.end = first + 1;
      while (r.end < ms.size() && ms[r.end].same_record) ++r.end;
      index_of_first[first] = records.size();
      records.push_back(std::move(r));
    }
    record_of[i] = index_of_first[first];
  }
  size_t rounds = 0;
  for (Record& r : records) {
    const size_t n = r.end - r.first;
    rounds = std::max(rounds, n);
    r.by_turn.assign(n, 0);
    r.data.resize(n);
    r.text.resize(n);
    try {
      for (size_t k = r.first; k < r.end; ++k) {
        r.by_turn[ms[k].raw_line ? 0 : ms[k].turn] = k - r.first;  // the index parser checked the places
        r.data[k - r.first] = read_member_data(src, ms[k]);
      }
    } catch (...) {
      r.error = std::current_exception();
    }
  }
  for (size_t t = 0; t < rounds; ++t) {
    std::vector<std::vector<int32_t>> contexts(records.size());
    std::vector<std::string> files(records.size());
    std::vector<FileToDecode> batch;
    std::vector<size_t> at;  // the record of each batch entry
    for (size_t ri = 0; ri < records.size(); ++ri) {
      Record& r = records[ri];
      if (r.error || t >= r.end - r.first) continue;
      const size_t j = r.by_turn[t];
      const ArchiveMember& m = ms[r.first + j];
      const std::string who = archive_name + ": member '" + m.name + "'" + (r.end - r.first > 1 ? " turn " + std::to_string(t) : "");
      try {
        if (!m.coded) {
          if (check32(r.data[j]) != m.check) throw std::runtime_error(who + ": checksum mismatch (member corrupted)");
          r.text[j] = r.data[j];
          continue;
        }
        if (!m.role.empty()) contexts[ri] = renderer->context(r.before, m.role);
        std::optional<uint16_t> tag;
        if (!contexts[ri].empty()) tag = fingerprint_tag16(context_fingerprint(contexts[ri]));
        const CompactFile f = member_compact_file(L.header, L.index, m, r.data[j], tag);
        files[ri] = f.serialize();
        if (progress) progress->set_total(progress->total() + LmCodec::token_count(files[ri]));
        FileToDecode job{files[ri], who, contexts[ri].empty() ? nullptr : &contexts[ri]};
        batch.push_back(job);
        at.push_back(ri);
      } catch (...) {
        r.error = std::current_exception();
      }
    }
    // Every member decodes with the adapter its header names (a base-coded one with the base,
    // whatever -a / -A say).
    const std::vector<DecodedFile> res = decode_any(sel, batch, threads, progress);
    for (size_t b = 0; b < res.size(); ++b) {
      Record& r = records[at[b]];
      if (res[b].error) r.error = res[b].error;
      else r.text[r.by_turn[t]] = res[b].data;
    }
    for (Record& r : records)
      if (!r.error && t < r.end - r.first) {
        const ArchiveMember& m = ms[r.first + r.by_turn[t]];
        r.before.push_back({m.role, r.text[r.by_turn[t]]});
      }
  }
  for (size_t i = 0; i < which.size(); ++i) {
    if (record_of[i] == SIZE_MAX) continue;
    const Record& r = records[record_of[i]];
    if (r.error) {
      out[i].error = r.error;
      continue;
    }
    const ArchiveMember& last = ms[r.end - 1];
    std::string line;
    if (last.raw_line) {
      line = r.text.back();
    } else {
      for (size_t k = r.first; k < r.end; ++k) line += ms[k].prefix + json_string_literal(r.text[k - r.first], ms[k].ascii_escapes);
      line += last.suffix;
    }
    if (!last.no_newline) line += '\n';
    out[i].doc = std::move(line);
  }
  return out;
}

}  // namespace

std::string archive_extract_member(const ByteSource& src, const ArchiveLayout& L, size_t k, AdapterSelector& sel, int threads,
                                   const std::string& archive_name, const TurnRendererFactory& renderers) {
  if (k >= L.index.members.size()) throw std::invalid_argument("member " + std::to_string(k) + " is not in " + archive_name);
  std::vector<ArchiveExtracted> r =
      archive_extract_members(src, L, {k}, sel, threads, archive_name, nullptr, renderers);
  if (r[0].error) std::rethrow_exception(r[0].error);
  return std::move(r[0].doc);
}

std::vector<ArchiveExtracted> archive_extract_members(const ByteSource& src, const ArchiveLayout& L, const std::vector<size_t>& which,
                                                     AdapterSelector& sel, int threads, const std::string& archive_name,
                                                     ProgressMeter* progress, const TurnRendererFactory& renderers) {
  if (L.header.flags & kArchiveConversations) {
    // Records in batches, as members below.
    std::vector<ArchiveExtracted> out;
    constexpr size_t kBatch = 256;
    for (size_t first = 0; first < which.size(); first += kBatch) {
      const std::vector<size_t> part(which.begin() + first, which.begin() + std::min(which.size(), first + kBatch));
      for (auto& e : extract_records(src, L, part, sel, threads, archive_name, progress, renderers))
        out.push_back(std::move(e));
    }
    return out;
  }
  std::vector<ArchiveExtracted> out(which.size());
  // Coded members are decoded in batches of this many (their files are held at once).
  constexpr size_t kBatch = 256;
  for (size_t first = 0; first < which.size(); first += kBatch) {
    const size_t n = std::min(kBatch, which.size() - first);
    std::vector<std::string> files(n), who(n);
    std::vector<FileToDecode> batch;
    std::vector<size_t> at;  // the result of each batch entry
    for (size_t i = 0; i < n; ++i) {
      const size_t k = which[first + i];
      try {
        if (k >= L.index.members.size()) throw std::invalid_argument("member " + std::to_string(k) + " is not in " + archive_name);
        const ArchiveMember& m = L.index.members[k];
        who[i] = archive_name + ": member '" + m.name + "'";
        const std::string data = read_member_data(src, m);
        if (!m.coded) {
          if (check32(data) != m.check) throw std::runtime_error(who[i] + ": checksum mismatch (member corrupted)");
          out[first + i].doc = member_document(L, m, data);
          continue;
        }
        const CompactFile f = member_compact_file(L.header, L.index, m, data);
        files[i] = f.serialize();
        if (progress) progress->set_total(progress->total() + LmCodec::token_count(files[i]));
        // decode_any: a member coded with the base alone decodes with the base whatever -a / -A say.
        batch.push_back({files[i], who[i]});
        at.push_back(i);
      } catch (...) {
        out[first + i].error = std::current_exception();
      }
    }
    const std::vector<DecodedFile> r = decode_any(sel, batch, threads, progress);
    for (size_t b = 0; b < r.size(); ++b) {
      ArchiveExtracted& e = out[first + at[b]];
      if (r[b].error) e.error = r[b].error;
      else e.doc = member_document(L, L.index.members[which[first + at[b]]], r[b].data);
    }
  }
  return out;
}

}  // namespace lorazip
