#include "eval/report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "common/fs.h"
#include "eval/paper_table.h"

namespace lorazip {
namespace {

std::string fmt(double v, int prec = 3) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

}  // namespace

double DomainResult::own_adapter_bits() const {
  auto it = adapter_bits.find(own_adapter);
  return own_adapter.empty() || it == adapter_bits.end() ? base_bits : it->second;
}

double DomainResult::own_adapter_bits_given() const {
  auto it = adapter_bits_given.find(own_adapter);
  return own_adapter.empty() || it == adapter_bits_given.end() ? base_bits_given : it->second;
}

double DomainResult::savings() const {
  double a = own_adapter_bits();
  return a > 0 ? base_bits / a : 0;
}

std::string DomainResult::best_classical_per_doc() const {
  std::string best;
  int64_t size = -1;
  for (const auto& [name, b] : classical_per_doc)
    if (size < 0 || b < size) size = b, best = name;
  return best;
}

nlohmann::json Report::to_json() const {
  nlohmann::json j;
  j["base"] = {{"name", base_name}, {"fingerprint", base_fingerprint}};
  j["tokenizer_fingerprint"] = tokenizer_fingerprint;
  j["adapters"] = adapters;
  j["seconds"] = seconds;
  j["domains"] = nlohmann::json::array();
  for (const auto& d : domains) {
    nlohmann::json e;
    e["domain"] = d.domain;
    e["corpus"] = d.corpus;
    e["docs"] = d.docs;
    e["tokens"] = d.tokens;
    e["bytes"] = d.bytes;
    e["own_adapter"] = d.own_adapter;
    e["ideal"] = {
        {"base_bits", d.base_bits},
        {"base_bits_per_token", d.bits_per_token(d.base_bits)},
        {"base_bits_per_byte", d.bits_per_byte(d.base_bits)},
        {"adapter_bits", d.own_adapter_bits()},
        {"adapter_bits_per_token", d.bits_per_token(d.own_adapter_bits())},
        {"adapter_bits_per_byte", d.bits_per_byte(d.own_adapter_bits())},
        {"savings_factor", d.savings()},
        {"base_ratio", d.bytes ? d.base_bits / 8.0 / d.bytes : 0},
        {"adapter_ratio", d.bytes ? d.own_adapter_bits() / 8.0 / d.bytes : 0},
        {"routed_bits", d.routed_bits},
        {"routed_bits_per_token", d.bits_per_token(d.routed_bits)},
    };
    e["chunk_modes"] = {
        {"context_tokens", d.context_tokens},
        {"long_docs", d.long_docs},
        {"windowed_bits_per_token", d.bits_per_token(d.base_bits)},
        {"windowed_tokens_per_s", d.base_seconds > 0 ? d.tokens / d.base_seconds : 0},
        {"independent_bits_per_token", d.bits_per_token(d.base_bits_independent)},
        {"independent_tokens_per_s", d.base_independent_seconds > 0 ? d.tokens / d.base_independent_seconds : 0},
    };
    nlohmann::json cross;
    for (const auto& [a, b] : d.adapter_bits) cross[a] = {{"bits", b}, {"bits_per_token", d.bits_per_token(b)}};
    e["cross"] = cross;
    e["routed_choice"] = d.routed_choice;
    e["coded_sample"] = {
        {"docs", d.sample_docs},           {"tokens", d.sample_tokens},
        {"bytes", d.sample_bytes},         {"base_ideal_bits", d.sample_base_ideal},
        {"base_file_bytes", d.sample_base_file}, {"base_payload_bytes", d.sample_base_payload},
        {"adapter_ideal_bits", d.sample_adapter_ideal}, {"adapter_file_bytes", d.sample_adapter_file},
        {"adapter_payload_bytes", d.sample_adapter_payload}, {"archive_bytes", d.sample_archive_bytes},
        {"roundtrip_ok", d.sample_roundtrip_ok},
    };
    e["classical_per_doc_bytes"] = d.classical_per_doc;
    e["classical_concat_bytes"] = d.classical_concat;
    if (d.zstd_dict_per_doc >= 0) e["zstd19_dict"] = {{"per_doc_bytes", d.zstd_dict_per_doc}, {"dict_bytes", d.zstd_dict_bytes}};
    if (std::isfinite(d.base_bits_given)) {
      nlohmann::json cross_given;
      for (const auto& [a, b] : d.adapter_bits_given) cross_given[a] = {{"bits", b}, {"bits_per_token", d.bits_per_token(b)}};
      e["conditioned"] = {{"template", d.context_template},
                          {"context_tokens", d.context_tokens_given},
                          {"base_bits", d.base_bits_given},
                          {"base_bits_per_token", d.bits_per_token(d.base_bits_given)},
                          {"adapter_bits", d.own_adapter_bits_given()},
                          {"adapter_bits_per_token", d.bits_per_token(d.own_adapter_bits_given())},
                          {"base_saving", d.base_bits > 0 ? 1.0 - d.base_bits_given / d.base_bits : 0.0},
                          {"cross", cross_given}};
      if (!d.classical_records_given.empty()) {
        e["conditioned"]["prompt_bytes"] = d.prompt_bytes_given;
        e["conditioned"]["classical_jsonl_per_record_bytes"] = d.classical_records_given;
      }
    }
    if (std::isfinite(d.prompt_routed_bits))
      e["prompt_routed"] = {{"bits", d.prompt_routed_bits}, {"bits_per_token", d.bits_per_token(d.prompt_routed_bits)},
                            {"choice", d.prompt_routed_choice}};
    j["domains"].push_back(e);
  }
  j["paper_metric"] = paper_table_json(*this);
  return j;
}

std::string Report::to_markdown() const {
  std::ostringstream o;
  o << "### Bits per token on each domain's test documents (ideal code length)\n\n";
  o << "| domain | docs | tokens | base bits/token | adapter bits/token | savings (base/adapter) | base bits/byte | adapter bits/byte | "
       "adapter ratio | routed (-A) bits/token |";
  for (const auto& d : domains)
    if (!d.classical_per_doc.empty()) {
      o << " best classical |";
      break;
    }
  o << "\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|";
  bool any_classical = false;
  for (const auto& d : domains) any_classical |= !d.classical_per_doc.empty();
  if (any_classical) o << "---|";
  o << "\n";
  for (const auto& d : domains) {
    o << "| " << d.domain << (d.corpus == "test" ? "" : " (" + d.corpus + ")") << " | " << d.docs << " | " << d.tokens << " | "
      << fmt(d.bits_per_token(d.base_bits)) << " | " << (d.own_adapter.empty() ? "-" : fmt(d.bits_per_token(d.own_adapter_bits())))
      << " | " << (d.own_adapter.empty() ? "-" : fmt(d.savings(), 2) + "x") << " | " << fmt(d.bits_per_byte(d.base_bits)) << " | "
      << (d.own_adapter.empty() ? "-" : fmt(d.bits_per_byte(d.own_adapter_bits()))) << " | "
      << fmt(d.bytes ? d.own_adapter_bits() / 8.0 / d.bytes : 0, 4) << " | " << fmt(d.bits_per_token(d.routed_bits)) << " |";
    if (any_classical) {
      std::string b = d.best_classical_per_doc();
      o << " " << (b.empty() ? "-" : b + " " + fmt(8.0 * d.classical_per_doc.at(b) / std::max<int64_t>(1, d.tokens)) + " bits/token") << " |";
    }
    o << "\n";
  }
  bool any_given = false;
  for (const auto& d : domains) any_given |= std::isfinite(d.base_bits_given);
  if (any_given) {
    o << "\n### Conditioned on the prompt: each response coded given its prompt (`compress --context-file`) vs from BOS alone\n\n"
         "| domain | docs | context tokens | base, BOS only | base, given the prompt | saving | adapter, BOS only | "
         "adapter, given the prompt | saving | template |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
    for (const auto& d : domains) {
      if (!std::isfinite(d.base_bits_given)) continue;
      const double a0 = d.own_adapter_bits(), a1 = d.own_adapter_bits_given();
      o << "| " << d.domain << " | " << d.docs << " | " << d.context_tokens_given << " | " << fmt(d.bits_per_token(d.base_bits)) << " | "
        << fmt(d.bits_per_token(d.base_bits_given)) << " | " << fmt(d.base_bits > 0 ? 100.0 * (1 - d.base_bits_given / d.base_bits) : 0, 1)
        << "% | " << (d.own_adapter.empty() ? "-" : fmt(d.bits_per_token(a0))) << " | "
        << (d.own_adapter.empty() ? "-" : fmt(d.bits_per_token(a1))) << " | "
        << (d.own_adapter.empty() ? "-" : fmt(a0 > 0 ? 100.0 * (1 - a1 / a0) : 0, 1) + "%") << " | " << d.context_template << " |\n";
    }
    o << "\n(bits/token of the responses' ideal code length; the prompt's tokens are read, not coded, and the file "
         "stores only their fingerprint.)\n";
    bool any_records = false;
    for (const auto& d : domains) any_records |= !d.classical_records_given.empty();
    if (any_records) {
      o << "\n#### The same records in bytes, beside the classical codecs (each document or record compressed alone)\n\n"
           "| domain | docs | response bytes | prompt bytes | best classical, responses alone | best classical, prompt + response "
           "as a JSONL line | lorazip base, responses given the prompts | lorazip own adapter, given the prompts |\n"
           "|---|---:|---:|---:|---|---|---:|---:|\n";
      auto best = [](const std::map<std::string, int64_t>& m) {
        std::string name;
        int64_t size = -1;
        for (const auto& [n, b] : m)
          if (size < 0 || b < size) size = b, name = n;
        return name.empty() ? std::string("-") : fmt(static_cast<double>(size), 0) + " (" + name + ")";
      };
      for (const auto& d : domains) {
        if (d.classical_records_given.empty()) continue;
        o << "| " << d.domain << " | " << d.docs << " | " << d.bytes << " | " << d.prompt_bytes_given << " | " << best(d.classical_per_doc)
          << " | " << best(d.classical_records_given) << " | " << fmt(d.base_bits_given / 8, 0) << " | "
          << (d.own_adapter.empty() ? "-" : fmt(d.own_adapter_bits_given() / 8, 0)) << " |\n";
      }
      o << "\n(lorazip: the ideal code length in bytes, without file headers; the prompts are not stored, as both sides hold "
           "them. A JSONL file that holds both is what `lorazip archive create --jsonl --conversations` codes: docs/codec.md.)\n";
    }
  }
  bool any_modes = false;
  for (const auto& d : domains) any_modes |= d.base_independent_seconds > 0;
  if (any_modes) {
    o << "\n### Chunk modes under the base model: independent chunks (W = 0) vs context across chunks (W tokens)\n\n"
         "| domain | docs | docs over one chunk | W | independent bits/token | windowed bits/token | saving | "
         "independent tokens/s | windowed tokens/s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& d : domains) {
      const double a = d.bits_per_token(d.base_bits_independent), b = d.bits_per_token(d.base_bits);
      o << "| " << d.domain << " | " << d.docs << " | " << d.long_docs << " | " << d.context_tokens << " | " << fmt(a) << " | "
        << fmt(b) << " | " << fmt(a > 0 ? 100.0 * (1 - b / a) : 0, 2) << "% | "
        << fmt(d.base_independent_seconds > 0 ? d.tokens / d.base_independent_seconds : 0, 0) << " | "
        << fmt(d.base_seconds > 0 ? d.tokens / d.base_seconds : 0, 0) << " |\n";
    }
    o << "\n(tokens/s: teacher-forced scoring of every document, as the encoder runs; a windowed file decodes its "
         "chunks one after another.)\n";
  }
  if (!adapters.empty()) {
    o << "\n### Cross-domain matrix: bits/token of each adapter (columns) on each domain's test documents (rows)\n\n| domain | base |";
    for (const auto& a : adapters) o << " " << a << " |";
    o << "\n|---|---:|";
    for (size_t i = 0; i < adapters.size(); ++i) o << "---:|";
    o << "\n";
    for (const auto& d : domains) {
      o << "| " << d.domain << " | " << fmt(d.bits_per_token(d.base_bits)) << " |";
      for (const auto& a : adapters) {
        auto it = d.adapter_bits.find(a);
        o << " " << (it == d.adapter_bits.end() ? "-" : fmt(d.bits_per_token(it->second))) << (a == d.own_adapter ? "*" : "") << " |";
      }
      o << "\n";
    }
    o << "\n(* = the domain's own adapter.) Routing (-A) picks, per document:";
    for (const auto& d : domains) {
      o << "\n- " << d.domain << ":";
      for (const auto& [k, n] : d.routed_choice) o << " " << k << "=" << n;
    }
    o << "\n";
  }
  bool any_sample = false;
  for (const auto& d : domains) any_sample |= d.sample_docs > 0;
  if (any_sample) {
    o << "\n### Real coded size on a sample of documents (each document compressed alone)\n\n";
    o << "| domain | docs | bytes | base ideal bits | base coded bits | overhead | adapter ideal bits | adapter coded bits | overhead | "
         "adapter file ratio | files over ideal, bytes/doc | 3% of ideal + 8 B, bytes/doc | archive ratio | archive over ideal | round trip |\n"
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
    for (const auto& d : domains) {
      if (!d.sample_docs) continue;
      double bc = 8.0 * d.sample_base_payload, ac = 8.0 * d.sample_adapter_payload;
      const double ideal_bytes = d.sample_adapter_ideal / 8.0;
      o << "| " << d.domain << " | " << d.sample_docs << " | " << d.sample_bytes << " | " << fmt(d.sample_base_ideal, 0) << " | "
        << fmt(bc, 0) << " | " << fmt(d.sample_base_ideal > 0 ? 100.0 * (bc / d.sample_base_ideal - 1) : 0, 2) << "% | "
        << fmt(d.sample_adapter_ideal, 0) << " | " << fmt(ac, 0) << " | "
        << fmt(d.sample_adapter_ideal > 0 ? 100.0 * (ac / d.sample_adapter_ideal - 1) : 0, 2) << "% | "
        << fmt(d.sample_bytes ? static_cast<double>(d.sample_adapter_file) / d.sample_bytes : 0, 4) << " | "
        << fmt((static_cast<double>(d.sample_adapter_file) - ideal_bytes) / static_cast<double>(d.sample_docs), 1) << " | "
        << fmt(0.03 * ideal_bytes / static_cast<double>(d.sample_docs) + 8.0, 1) << " | ";
      if (d.sample_archive_bytes > 0)
        o << fmt(d.sample_bytes ? static_cast<double>(d.sample_archive_bytes) / d.sample_bytes : 0, 4) << " | "
          << fmt(ideal_bytes > 0 ? 100.0 * (d.sample_archive_bytes / ideal_bytes - 1) : 0, 2) << "% | ";
      else
        o << "- | - | ";
      o << (d.sample_roundtrip_ok ? "ok" : "FAILED") << " |\n";
    }
    o << "\n(coded bits = arithmetic-coded payload; the file ratio also counts each file's container header (compact "
         "files, `lorazip compress`); the archive holds the same documents in one file (`lorazip archive create`), "
         "index and header included; \"over ideal\" is against the adapter's ideal code length; lorazip aims its compact files "
         "at no more than 3% of the ideal + 8 bytes a document over it.)\n";
  }
  if (any_classical) {
    o << "\n### Classical compressors on the same documents (compressed/original ratio)\n\n| domain | lorazip base | lorazip adapter |";
    std::vector<std::string> names;
    for (const auto& d : domains)
      for (const auto& [k, v] : d.classical_per_doc)
        if (std::find(names.begin(), names.end(), k) == names.end()) names.push_back(k);
    bool any_dict = false;
    for (const auto& d : domains) any_dict |= d.zstd_dict_per_doc >= 0;
    for (const auto& n : names) o << " " << n << " per doc | " << n << " concatenated |";
    if (any_dict) o << " zstd-19 + dictionary per doc |";
    o << "\n|---|---:|---:|";
    for (size_t i = 0; i < names.size(); ++i) o << "---:|---:|";
    if (any_dict) o << "---:|";
    o << "\n";
    for (const auto& d : domains) {
      if (!d.bytes) continue;
      o << "| " << d.domain << " | " << fmt(d.base_bits / 8.0 / d.bytes, 4) << " | " << fmt(d.own_adapter_bits() / 8.0 / d.bytes, 4) << " |";
      for (const auto& n : names) {
        auto a = d.classical_per_doc.find(n), b = d.classical_concat.find(n);
        o << " " << (a == d.classical_per_doc.end() ? "-" : fmt(static_cast<double>(a->second) / d.bytes, 4)) << " | "
          << (b == d.classical_concat.end() ? "-" : fmt(static_cast<double>(b->second) / d.bytes, 4)) << " |";
      }
      if (any_dict) o << " " << (d.zstd_dict_per_doc >= 0 ? fmt(static_cast<double>(d.zstd_dict_per_doc) / d.bytes, 4) : "-") << " |";
      o << "\n";
    }
    o << "\n(lorazip columns: ideal code length of each document coded alone";
    if (any_dict)
      o << "; the zstd dictionary (at most 16 KiB, as `zstd --train`) is trained on the domain's training documents and "
           "not counted";
    o << ".)\n";
  }
  o << paper_table_markdown(*this);
  return o.str();
}

std::string Report::to_csv() const {
  std::ostringstream o;
  o << "domain,corpus,docs,tokens,bytes,model,ideal_bits,bits_per_token,bits_per_byte,ratio\n";
  for (const auto& d : domains) {
    auto row = [&](const std::string& model, double bits) {
      o << d.domain << "," << d.corpus << "," << d.docs << "," << d.tokens << "," << d.bytes << "," << model << "," << fmt(bits, 1) << ","
        << fmt(d.bits_per_token(bits), 5) << "," << fmt(d.bits_per_byte(bits), 5) << "," << fmt(d.bytes ? bits / 8.0 / d.bytes : 0, 5)
        << "\n";
    };
    row("base", d.base_bits);
    for (const auto& [a, b] : d.adapter_bits) row("adapter:" + a, b);
    row("routed", d.routed_bits);
    if (std::isfinite(d.base_bits_given)) {
      row("base:given_prompt", d.base_bits_given);
      for (const auto& [a, b] : d.adapter_bits_given) row("adapter:" + a + ":given_prompt", b);
    }
    for (const auto& [n, b] : d.classical_per_doc) row(n + ":per_doc", 8.0 * b);
    for (const auto& [n, b] : d.classical_concat) row(n + ":concat", 8.0 * b);
    if (d.zstd_dict_per_doc >= 0) row("zstd-19+dict:per_doc", 8.0 * d.zstd_dict_per_doc);
  }
  return o.str();
}

std::string Report::to_svg() const {
  // Grouped bars: per domain, base / own adapter / best classical (per document), in bits/token.
  const int n = static_cast<int>(domains.size());
  const double left = 70, right = 20, top = 60, bottom = 70, group_w = 150, bar_w = 36, height = 320;
  const double width = left + right + std::max(1, n) * group_w;
  double vmax = 0;
  std::vector<std::array<double, 3>> vals;
  for (const auto& d : domains) {
    std::array<double, 3> v{d.bits_per_token(d.base_bits), d.own_adapter.empty() ? NAN : d.bits_per_token(d.own_adapter_bits()), NAN};
    std::string b = d.best_classical_per_doc();
    if (!b.empty() && d.tokens) v[2] = 8.0 * d.classical_per_doc.at(b) / d.tokens;
    for (double x : v)
      if (std::isfinite(x)) vmax = std::max(vmax, x);
    vals.push_back(v);
  }
  if (vmax <= 0) vmax = 1;
  double step = vmax > 10 ? 2 : vmax > 4 ? 1 : 0.5;
  double ymax = std::ceil(vmax * 1.12 / step) * step;
  auto y = [&](double v) { return top + height - v / ymax * height; };
  const char* colors[3] = {"#8c8c8c", "#2b7bba", "#e08a2c"};
  const char* labels[3] = {"base model", "domain adapter", "best classical (per document)"};
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << top + height + bottom
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << width / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">"
    << "Bits per token on each domain's test text (lower is better)</text>\n";
  for (double t = 0; t <= ymax + 1e-9; t += step) {
    o << "<line x1=\"" << left << "\" x2=\"" << width - right << "\" y1=\"" << y(t) << "\" y2=\"" << y(t)
      << "\" stroke=\"#e5e5e5\"/>\n";
    o << "<text x=\"" << left - 6 << "\" y=\"" << y(t) + 4 << "\" text-anchor=\"end\">" << fmt(t, 1) << "</text>\n";
  }
  o << "<line x1=\"" << left << "\" x2=\"" << left << "\" y1=\"" << top << "\" y2=\"" << top + height << "\" stroke=\"black\"/>\n";
  o << "<line x1=\"" << left << "\" x2=\"" << width - right << "\" y1=\"" << top + height << "\" y2=\"" << top + height
    << "\" stroke=\"black\"/>\n";
  o << "<text transform=\"translate(18," << top + height / 2 << ") rotate(-90)\" text-anchor=\"middle\">bits per token</text>\n";
  o << "<text x=\"" << left + (width - left - right) / 2 << "\" y=\"" << top + height + 50 << "\" text-anchor=\"middle\">domain</text>\n";
  for (int i = 0; i < n; ++i) {
    double gx = left + i * group_w + (group_w - 3 * bar_w - 8) / 2;
    for (int k = 0; k < 3; ++k) {
      double v = vals[i][k];
      if (!std::isfinite(v)) continue;
      double x = gx + k * (bar_w + 4);
      o << "<rect x=\"" << x << "\" y=\"" << y(v) << "\" width=\"" << bar_w << "\" height=\"" << top + height - y(v) << "\" fill=\""
        << colors[k] << "\"/>\n";
      o << "<text x=\"" << x + bar_w / 2 << "\" y=\"" << y(v) - 4 << "\" text-anchor=\"middle\" font-size=\"11\">" << fmt(v, 2)
        << "</text>\n";
    }
    o << "<text x=\"" << left + i * group_w + group_w / 2 << "\" y=\"" << top + height + 20 << "\" text-anchor=\"middle\">"
      << xml_escape(domains[i].domain) << "</text>\n";
  }
  double lx = left + 10;
  for (int k = 0; k < 3; ++k) {
    o << "<rect x=\"" << lx << "\" y=\"34\" width=\"12\" height=\"12\" fill=\"" << colors[k] << "\"/>\n";
    o << "<text x=\"" << lx + 16 << "\" y=\"44\">" << labels[k] << "</text>\n";
    lx += 16 + 7.0 * std::string(labels[k]).size() + 20;
  }
  o << "</svg>\n";
  return o.str();
}

void Report::write(const std::string& dir) const {
  write_file_atomic(dir + "/report.json", to_json().dump(2) + "\n");
  write_file_atomic(dir + "/report.csv", to_csv());
  write_file_atomic(dir + "/report.md", to_markdown());
  write_file_atomic(dir + "/report.svg", to_svg());
}

}  // namespace lorazip
