// Corpus reading: walks an input (file or directory), decodes JSONL records or takes whole plain-text
// files, and returns documents whose bytes are exactly the source's (JSON strings as UTF-8).
#include "data/corpus.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/fs.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lorazip {
namespace {

bool has_jsonl_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jsonl" || ext == ".ndjson";
}

const char* json_kind(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "a list";
    case json::value_t::string: return "a string";
    default: return "a non-string value";
  }
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; the bracket adds nothing here.
std::string clean_json_error(const std::string& what) {
  size_t p = what.find("] ");
  return (what.rfind("[json.exception", 0) == 0 && p != std::string::npos) ? what.substr(p + 2) : what;
}

// One bad record: thrown, or counted when the user asked to skip them.
struct BadLine : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Text of a chat turn's "content": a string, or a list of {type: "text", text} parts joined.
// Returns false for null content (an assistant turn that only calls tools).
bool message_text(const json& content, std::string& out, const std::string& where) {
  if (content.is_null()) return false;
  if (content.is_string()) {
    out = content.get<std::string>();
    return true;
  }
  if (content.is_array()) {
    out.clear();
    for (const auto& part : content) {
      if (!part.is_object()) throw BadLine(where + ": a 'content' part is " + json_kind(part) + ", expected an object");
      auto t = part.find("text");
      if (t == part.end()) continue;  // non-text parts (images, ...) carry no document bytes
      if (!t->is_string()) throw BadLine(where + ": a 'content' part's 'text' is " + json_kind(*t) + ", expected a string");
      out += t->get_ref<const std::string&>();
    }
    return true;
  }
  throw BadLine(where + ": 'content' is " + std::string(json_kind(content)) + ", expected a string");
}

void documents_of_record(const json& rec, const std::string& where, const InputSpec& in, std::vector<Document>& docs) {
  if (!rec.is_object()) throw BadLine(where + ": the record is " + std::string(json_kind(rec)) + ", expected a JSON object");
  if (in.messages) {
    auto m = rec.find("messages");
    if (m == rec.end())
      throw BadLine(where + ": no field 'messages' (the input has messages: true; set it to false to read '" +
                    in.text_field + "' instead)");
    if (!m->is_array()) throw BadLine(where + ": 'messages' is " + std::string(json_kind(*m)) + ", expected a list");
    for (size_t i = 0; i < m->size(); ++i) {
      const json& msg = (*m)[i];
      std::string at = where + ": messages[" + std::to_string(i) + "]";
      if (!msg.is_object()) throw BadLine(at + " is " + json_kind(msg) + ", expected an object with role and content");
      auto role = msg.find("role");
      if (role == msg.end() || !role->is_string()) throw BadLine(at + " has no string 'role'");
      if (role->get_ref<const std::string&>() != "assistant") continue;
      auto content = msg.find("content");
      if (content == msg.end()) throw BadLine(at + " has no 'content'");
      std::string text;
      if (message_text(*content, text, at)) docs.push_back({std::move(text), where});
    }
    return;
  }
  auto f = rec.find(in.text_field);
  if (f == rec.end())
    throw BadLine(where + ": no field '" + in.text_field + "' (set text_field to the field that holds the document)");
  if (!f->is_string())
    throw BadLine(where + ": field '" + in.text_field + "' is " + json_kind(*f) + ", expected a string");
  docs.push_back({f->get<std::string>(), where});
}

bool reached_cap(const InputSpec& in, const CorpusReadResult& out) {
  return in.max_docs > 0 && static_cast<int64_t>(out.docs.size()) >= in.max_docs;
}

}  // namespace

void check_domain_name(const std::string& domain) {
  bool ok = !domain.empty() && domain.size() <= 128 && domain[0] != '.';
  for (unsigned char c : domain) ok = ok && (std::isalnum(c) || c == '_' || c == '-' || c == '.');
  if (!ok)
    throw std::invalid_argument("domain name '" + domain +
                                "' is not allowed: use letters, digits, '_', '-' or '.' (not first), up to 128 characters");
}

std::vector<std::string> list_input_files(const std::string& path) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw std::runtime_error("data input '" + path + "' does not exist");
  if (fs::is_regular_file(st)) return {path};
  if (!fs::is_directory(st)) throw std::runtime_error("data input '" + path + "' is neither a file nor a directory");
  std::vector<std::string> files;
  fs::recursive_directory_iterator it(path, fs::directory_options::follow_directory_symlink, ec), end;
  if (ec) throw std::runtime_error("cannot list directory '" + path + "': " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw std::runtime_error("cannot list directory '" + path + "': " + ec.message());
    std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void parse_jsonl(const std::string& data, const std::string& name, const InputSpec& in, bool skip_bad_lines,
                 CorpusReadResult& out) {
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < data.size() && !reached_cap(in, out)) {
    size_t nl = data.find('\n', pos);
    size_t end = nl == std::string::npos ? data.size() : nl;
    ++line_no;
    const char* b = data.data() + pos;
    const char* e = data.data() + end;
    pos = end + 1;
    bool blank = std::all_of(b, e, [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
    if (blank) continue;
    std::string where = name + ":" + std::to_string(line_no);
    try {
      json rec;
      try {
        rec = json::parse(b, e);
      } catch (const json::parse_error& err) {
        throw BadLine(where + ": malformed JSON: " + clean_json_error(err.what()));
      }
      size_t before = out.docs.size();
      try {
        documents_of_record(rec, where, in, out.docs);
      } catch (const BadLine&) {
        out.docs.resize(before);  // a record counts whole or not at all
        throw;
      }
      if (in.max_docs > 0 && static_cast<int64_t>(out.docs.size()) > in.max_docs) out.docs.resize(in.max_docs);
    } catch (const BadLine& bad) {
      if (!skip_bad_lines)
        throw std::runtime_error(std::string(bad.what()) + " (set data.skip_bad_lines: true to skip such lines)");
      ++out.lines_skipped;
    }
  }
}

CorpusReadResult read_input(const InputSpec& in, bool skip_bad_lines) {
  if (in.format != "auto" && in.format != "jsonl" && in.format != "text")
    throw std::invalid_argument("data input '" + in.path + "': format '" + in.format + "' is not one of auto, jsonl, text");
  CorpusReadResult out;
  for (const std::string& file : list_input_files(in.path)) {
    if (reached_cap(in, out)) break;
    out.files.push_back(file);
    std::string data = read_file(file);
    bool jsonl = in.format == "jsonl" || (in.format == "auto" && has_jsonl_extension(file));
    if (jsonl) parse_jsonl(data, file, in, skip_bad_lines, out);
    else out.docs.push_back({std::move(data), file});
  }
  return out;
}

}  // namespace lorazip
