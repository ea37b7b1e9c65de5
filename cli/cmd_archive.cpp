// lorazip archive create|add|list|extract|test|repair: many documents in one .lza file, with tar's and
// zip's habits (create refuses to overwrite without -f, extract writes under -C DIR or to
// standard output with -c, never outside DIR, and names every member it cannot restore).
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "cli/commands.h"
#include "runtime/archive_io.h"
#include "codec/compact.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/progress.h"
#include "gen/context.h"

namespace fs = std::filesystem;

namespace lorazip {

CLI::App* add_archive_subcommand(CLI::App& app, ArchiveCliOptions& o) {
  auto* a = app.add_subcommand("archive", "many documents in one file: create | add | list | extract | test | repair ARCHIVE [...]");
  a->add_option("action", o.action, "create, add, list, extract, test or repair (cut an interrupted add back to the last complete state)")
      ->required()
      ->check(CLI::IsMember({"create", "add", "list", "extract", "test", "repair"}));
  a->add_option("archive", o.archive, "the archive file (.lza)")->required();
  a->add_option("inputs", o.inputs, "create/add: files or directories (or one JSONL file with --jsonl); extract/test: member names (default: all)");
  a->add_option("-m,--model", o.model_dir, "base model (directory or .gguf)");
  a->add_option("-a,--adapter", o.adapter_dir, "adapter directory to code (or decode) every document with");
  a->add_option("-A,--adapters", o.adapters_dir, "directory of adapters: create/add pick per document; extract finds each member's");
  a->add_flag("--jsonl", o.jsonl, "create/add: the input is a JSONL file whose records' \"text\" fields are the documents");
  a->add_flag("--conversations", o.conversations,
              "create: JSONL records with \"messages\" (role, content) or \"prompt\" + \"response\"/\"text\" are coded turn by turn, "
              "each turn given the turns before it (add follows the archive)");
  a->add_option("--template", o.template_name, "create --conversations: how earlier turns are rendered: auto (the base's chat template, else plain), chatml or plain")
      ->capture_default_str();
  a->add_option("-C,--directory", o.directory, "extract: write members under this directory")->capture_default_str();
  a->add_flag("-c,--stdout", o.to_stdout, "extract: write the members to standard output, one after another");
  a->add_option("-o,--output", o.output, "extract: write the members, one after another, to this file (a JSONL archive gives its JSONL file back)");
  a->add_flag("-f,--force", o.force, "create: replace an existing archive; extract: overwrite existing files");
  a->add_option("--chunk", o.chunk_tokens, "create: positions per stream (0 = the model's context - 1)")->capture_default_str();
  a->add_option("--context-tokens", o.context_tokens, "create: tokens each later chunk reads first (-1 = a quarter of the chunk)")->capture_default_str();
  a->add_flag("-v,--verbose", o.verbose, "create/add: sizes and ratio; list: per-member details");
  return a;
}

namespace {

std::vector<ArchiveDocument> read_inputs(const ArchiveCliOptions& o, bool conversations) {
  if (o.inputs.empty()) throw std::invalid_argument("archive " + o.action + ": name the files, directories or (--jsonl) JSONL file to store");
  if (!o.jsonl) return documents_from_paths(o.inputs);
  std::vector<ArchiveDocument> docs;
  for (const auto& in : o.inputs) {
    std::vector<ArchiveDocument> d = documents_from_jsonl(read_file(in), conversations);
    docs.insert(docs.end(), d.begin(), d.end());
  }
  // Records are named by their position in the archive's JSONL file; add renumbers them there.
  return docs;
}

void report_write(const ArchiveCliOptions& o, const ArchiveWriteStats& st) {
  if (!o.verbose) return;
  for (const auto& [role, b] : st.by_role)
    std::fprintf(stderr, "%s: %-10s %6zu turns, %10llu bytes in, %10llu data bytes (%.4f of the input; ideal %.0f bytes)\n", o.archive.c_str(),
                 role.empty() ? "(no role)" : role.c_str(), b.turns, (unsigned long long)b.input_bytes, (unsigned long long)b.data_bytes,
                 b.input_bytes ? double(b.data_bytes) / double(b.input_bytes) : 0.0, b.ideal_bits / 8);
  if (st.records && st.records != st.members) std::fprintf(stderr, "%s: %zu records as %zu members (their turns)\n", o.archive.c_str(), st.records, st.members);
  std::fprintf(stderr, "%s: %zu members (%zu stored as they are), %llu bytes in, %llu data bytes (ideal %.0f bytes for the coded ones), "
               "file %llu bytes, ratio %.4f\n", o.archive.c_str(), st.members, st.stored, (unsigned long long)st.input_bytes,
               (unsigned long long)st.data_bytes, st.ideal_bits / 8, (unsigned long long)st.file_bytes,
               st.input_bytes ? double(st.file_bytes) / double(st.input_bytes) : 0.0);
}

ArchiveCodingOptions coding_options(const ArchiveCliOptions& o, const GlobalOptions& g) {
  ArchiveCodingOptions c;
  c.chunk_tokens = o.chunk_tokens;
  c.context_tokens = o.context_tokens;
  c.threads = g.threads;
  return c;
}

int list_members(const ArchiveCliOptions& o) {
  auto src = open_file_source(o.archive);
  const ArchiveLayout L = read_archive_layout(*src, o.archive);
  if (o.verbose) {
    std::printf("# archive version %d, base model fingerprint begins %04x, tokenizer %02x, %s, %zu members\n", L.header.version, L.header.base_tag,
                L.header.tokenizer_tag,
                L.header.flags & kArchiveConversations ? "conversations (JSONL records coded turn by turn)"
                : L.header.flags & kArchiveJsonl        ? "JSONL records"
                                                        : "files",
                L.index.members.size());
    if (L.header.flags & kArchiveConversations)
      std::printf("# turns are coded given the turns before them, rendered in %s; a record's turns share its name\n",
                  gen::turn_template_name(L.header.turn_template));
    if (L.header.version == kArchiveVersion)
      std::printf("# columns: document bytes ('-': coded, not recorded; the member's seal checks it), data bytes, how, name\n");
    for (size_t i = 0; i < L.index.adapters.size(); ++i)
      std::printf("# adapter %zu: fingerprint begins %04x, domain '%s'\n", i + 1, L.index.adapters[i].tag, L.index.adapters[i].domain.c_str());
  }
  for (size_t k = 0; k < L.index.members.size(); ++k) {
    const ArchiveMember& m = L.index.members[k];
    if (!o.verbose) {
      if (m.same_record) continue;  // a record's later turns: one name per record
      std::printf("%s\n", m.name.c_str());
      continue;
    }
    std::string how = !m.coded ? "stored" : m.adapter == 0 ? "base" : "adapter " + L.index.adapters[m.adapter - 1].domain;
    const std::string size = m.coded && L.header.version == kArchiveVersion ? "-" : std::to_string(m.original_bytes);
    std::string turn;
    if (L.header.flags & kArchiveConversations && !m.raw_line && !m.role.empty()) turn = "  (turn " + std::to_string(m.turn) + ", " + m.role + ")";
    std::printf("%10s %10llu  %-16s %s%s\n", size.c_str(), (unsigned long long)m.data_len, how.c_str(), m.name.c_str(), turn.c_str());
  }
  return 0;
}

// Cuts an archive that ends with an incomplete append back to its last complete state.
int repair(const ArchiveCliOptions& o) {
  if (!o.inputs.empty()) throw std::invalid_argument("archive repair takes the archive alone, not member names");
  const ArchiveRepair r = repair_archive(o.archive);
  if (r.intact) {
    std::printf("%s: intact (%zu members, %llu bytes); nothing to repair, nothing changed\n", o.archive.c_str(), r.members,
                (unsigned long long)r.old_size);
  } else {
    std::printf("%s: cut %llu bytes of an incomplete append; kept the last complete state: %zu members, %llu bytes\n", o.archive.c_str(),
                (unsigned long long)(r.old_size - r.kept_bytes), r.members, (unsigned long long)r.kept_bytes);
  }
  return 0;
}

// create / add: the inputs coded into the archive.
int write_members(const ArchiveCliOptions& o, const GlobalOptions& g, const LoadedModel& base, AdapterSelector& selector,
                  const TurnRendererFactory& renderers) {
  bool conversations = o.conversations;
  if (o.action == "add") {
    auto src = open_file_source(o.archive);
    conversations = (read_archive_layout(*src, o.archive).header.flags & kArchiveConversations) != 0;
  }
  std::vector<ArchiveDocument> docs = read_inputs(o, conversations);
  ArchiveCodingOptions c = coding_options(o, g);
  c.renderers = renderers;
  c.conversations = o.conversations;
  if (o.conversations) {
    c.turn_template = gen::resolve_turn_template(o.model_dir, *base.tokenizer, gen::parse_context_template(o.template_name));
    if (o.verbose) std::fprintf(stderr, "%s: turns rendered in %s\n", o.archive.c_str(), gen::turn_template_name(c.turn_template));
  }
  report_write(o, o.action == "create" ? archive_create(o.archive, selector, docs, c, o.force) : archive_add(o.archive, selector, docs, c));
  return 0;
}

// Writes one decoded member where extract puts it (nothing for test; appended to `stream` when the
// members go out as one stream).
void put_member(const ArchiveCliOptions& o, const std::string& name, std::string doc, bool one_stream, std::string& stream) {
  if (o.action == "test") return;
  if (one_stream) {
    stream += doc;
    return;
  }
  const fs::path out = extract_path(o.directory, name, o.archive);
  if (!o.force && fs::exists(out)) throw std::invalid_argument("'" + out.string() + "' already exists; use -f to overwrite");
  write_file_atomic(out.string(), doc);
}

// extract / test: the named members (all by default) decoded; a member that fails is named and the
// others are still written.
int read_members(const ArchiveCliOptions& o, const GlobalOptions& g, AdapterSelector& selector, const TurnRendererFactory& renderers) {
  if (o.action == "extract" && (o.to_stdout + !o.output.empty()) > 1) throw std::invalid_argument("-c and -o cannot be combined");
  auto src = open_file_source(o.archive);
  const ArchiveLayout L = read_archive_layout(*src, o.archive);
  const bool jsonl = (L.header.flags & kArchiveJsonl) != 0;
  const std::vector<size_t> which = select_members(L.index, (L.header.flags & kArchiveConversations) != 0, o.inputs, o.archive);
  const bool one_stream = o.action == "extract" && (o.to_stdout || !o.output.empty() || jsonl);
  if (o.action == "extract" && jsonl && !o.to_stdout && o.output.empty())
    throw std::invalid_argument(o.archive + " holds JSONL records: extract them with -o FILE.jsonl or -c");
  if (one_stream && o.to_stdout && ::isatty(STDOUT_FILENO)) throw std::invalid_argument("refusing to write to a terminal: redirect stdout or use -o");
  if (!o.output.empty() && !o.force && fs::exists(o.output)) throw std::invalid_argument("'" + o.output + "' already exists; use -f to overwrite");
  std::vector<ArchiveExtracted> docs;
  {
    ProgressMeter meter(o.archive, 0, stderr, g.progress);
    docs = archive_extract_members(*src, L, which, selector, g.threads, o.archive, &meter, renderers);
  }
  std::string stream;
  int bad = 0;
  for (size_t i = 0; i < which.size(); ++i) {
    try {
      if (docs[i].error) std::rethrow_exception(docs[i].error);
      put_member(o, L.index.members[which[i]].name, std::move(docs[i].doc), one_stream, stream);
    } catch (const std::invalid_argument&) {
      throw;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "lorazip: %s\n", e.what());
      ++bad;
    }
  }
  if (one_stream && o.to_stdout) {
    if (std::fwrite(stream.data(), 1, stream.size(), stdout) != stream.size() || std::fflush(stdout) != 0)
      throw std::runtime_error("write error on standard output");
  } else if (one_stream) {
    write_file_atomic(o.output, stream);
  }
  if (bad) std::fprintf(stderr, "lorazip: %s: %d of %zu members failed\n", o.archive.c_str(), bad, which.size());
  return bad ? 1 : 0;
}

}  // namespace

int cmd_archive(const ArchiveCliOptions& o, const GlobalOptions& g) {
  if (!o.adapter_dir.empty() && !o.adapters_dir.empty()) throw std::invalid_argument("-a and -A cannot be combined");
  if (o.action == "list") return list_members(o);
  if (o.action == "repair") return repair(o);
  if (o.model_dir.empty()) throw std::invalid_argument("archive " + o.action + ": no base model: pass -m DIR or -m FILE.gguf");
  if (o.conversations && o.action != "create")
    throw std::invalid_argument("--conversations is for create (add follows the archive; extract and test read it from the archive)");
  if (o.conversations && !o.jsonl) throw std::invalid_argument("--conversations codes JSONL records: give --jsonl and a JSONL file");
  if (!o.conversations && o.template_name != "auto") throw std::invalid_argument("--template renders conversations: give --conversations too");
  if (o.conversations) gen::parse_context_template(o.template_name);  // refuse a bad name before loading the base
  LoadedModel base = load_model(o.model_dir);
  CodecSet codecs(base);
  AdapterSelector selector(codecs, {o.adapter_dir, o.adapters_dir, ""});
  const TurnRendererFactory renderers = gen::archive_turn_renderers(o.model_dir, *base.tokenizer);
  if (o.action == "create" || o.action == "add") return write_members(o, g, base, selector, renderers);
  return read_members(o, g, selector, renderers);
}

}  // namespace lorazip
