// Succinct rewrite then lossless coding (see rewrite.h).
#include "gen/rewrite.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/yaml_strict.h"
#include "gen/answer.h"
#include "gen/chat.h"

namespace lorazip::gen {

RewriteConfig load_rewrite_config(const std::string& path) {
  RewriteConfig c;
  YamlMap m = YamlMap::load_file(path);
  m.get("prompt", c.prompt);
  m.get("infer_prompt", c.infer_prompt);
  m.get("samples", c.samples);
  m.get("temperature", c.temperature);
  m.get("top_k", c.top_k);
  m.get("top_p", c.top_p);
  m.get("seed", c.seed);
  m.get("max_tokens", c.max_tokens);
  m.get("infer_tokens", c.infer_tokens);
  m.get("conditioned", c.conditioned);
  m.finish();
  if (c.prompt.find("{solution}") == std::string::npos) m.fail("prompt", "must contain {solution}");
  check_config(c);
  return c;
}

void check_config(const RewriteConfig& c) {
  if (c.samples < 1) throw std::invalid_argument("rewrite: samples must be >= 1");
  if (c.max_tokens < 1 || c.infer_tokens < 1) throw std::invalid_argument("rewrite: max_tokens and infer_tokens must be >= 1");
  SamplingOptions o;
  o.temperature = c.temperature;
  o.top_k = c.top_k;
  o.top_p = c.top_p;
  check_options(o, 1);
}

std::string strip_final_answer(const std::string& s) {
  if (s.find("\\boxed{") == std::string::npos) {
    // No boxed answer: drop the last non-empty line, where such responses state it.
    size_t end = s.find_last_not_of(" \t\r\n");
    if (end == std::string::npos) return "";
    const size_t nl = s.rfind('\n', end);
    return nl == std::string::npos ? "" : s.substr(0, nl);
  }
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const size_t box = s.find("\\boxed{", i);
    if (box == std::string::npos) break;
    int depth = 0;
    size_t j = box + 6;
    for (; j < s.size(); ++j) {
      if (s[j] == '{') ++depth;
      else if (s[j] == '}' && --depth == 0) break;
    }
    if (j >= s.size()) break;  // unbalanced: leave the rest as it is
    out += s.substr(i, box - i) + "\\boxed{?}";
    i = j + 1;
  }
  out += s.substr(i);
  return out;
}

RewriteResult rewrite_solution(const ChatModel& writer, const LmCodec& codec, const LmCodecOptions& code_opt, const std::string& problem,
                               const std::string& solution, const RewriteConfig& cfg, int threads, const ChatModel* inferer,
                               const std::string& gold) {
  check_config(cfg);
  RewriteResult r;
  const std::string prompt = fill_template(cfg.prompt, {{"problem", problem}, {"solution", strip_final_answer(solution)}});
  SamplingOptions o;
  o.temperature = cfg.temperature;
  o.top_k = cfg.top_k;
  o.top_p = cfg.top_p;
  o.seed = cfg.seed;
  o.max_tokens = cfg.max_tokens;
  o.stop_tokens = writer.chat.stop_tokens();
  const std::vector<Generation> gens = sample(*writer.model, writer.chat.user_prompt(*writer.tokenizer, prompt), cfg.samples, o, threads);
  for (size_t i = 0; i < gens.size(); ++i) {
    r.positions += gens[i].positions;
    r.samples.push_back(writer.tokenizer->decode(gens[i].tokens));
  }
  // The shortest non-empty rewrite (an empty one carries nothing; sample 0 when all are empty).
  bool found = false;
  for (size_t i = 0; i < r.samples.size(); ++i)
    if (!r.samples[i].empty() && (!found || r.samples[i].size() < r.samples[r.chosen].size())) {
      r.chosen = i;
      found = true;
    }
  r.rewrite = r.samples[r.chosen];
  r.original_bytes = static_cast<int64_t>(solution.size());
  r.rewrite_bytes = static_cast<int64_t>(r.rewrite.size());
  codec.compress(solution, code_opt, &r.original_code);
  codec.compress(r.rewrite, code_opt, &r.rewrite_code);
  if (r.original_bytes > 0) r.ratio_vs_bytes = r.rewrite_code.coded_bits() / (8.0 * static_cast<double>(r.original_bytes));
  if (r.original_code.payload_bytes > 0) r.ratio_vs_coded = r.rewrite_code.coded_bits() / r.original_code.coded_bits();
  if (inferer) {
    SamplingOptions g;
    g.max_tokens = cfg.infer_tokens;
    g.stop_tokens = inferer->chat.stop_tokens();
    const std::string ask = fill_template(cfg.infer_prompt, {{"problem", problem}, {"rewrite", r.rewrite}});
    r.inferred_answer = extract_answer(chat_reply(*inferer, ask, g, threads, &r.positions));
    r.inferred_correct = answers_match(r.inferred_answer, gold);
  }
  return r;
}

std::string rewrite_markdown(const std::vector<std::pair<std::string, RewriteResult>>& rows) {
  std::string md =
      "| id | original bytes | original coded bits | rewrite bytes | rewrite coded bits | ratio vs bytes | ratio vs coded | answer from rewrite |\n"
      "|---|---:|---:|---:|---:|---:|---:|---|\n";
  double sum_bytes = 0, sum_coded = 0, sum_rw = 0;
  int inferred = 0;
  for (const auto& [id, r] : rows) {
    char row[512];
    std::snprintf(row, sizeof row, "| %s | %lld | %.0f | %lld | %.0f | %.4f | %.4f | %s %s |\n", id.c_str(), static_cast<long long>(r.original_bytes),
                  r.original_code.coded_bits(), static_cast<long long>(r.rewrite_bytes), r.rewrite_code.coded_bits(), r.ratio_vs_bytes,
                  r.ratio_vs_coded, r.inferred_answer.substr(0, 20).c_str(), r.inferred_correct ? "✓" : "✗");
    md += row;
    sum_bytes += 8.0 * static_cast<double>(r.original_bytes);
    sum_coded += r.original_code.coded_bits();
    sum_rw += r.rewrite_code.coded_bits();
    inferred += r.inferred_correct;
  }
  char tot[512];
  std::snprintf(tot, sizeof tot, "| **all %zu** | %.0f | %.0f |  | %.0f | %.4f | %.4f | %d/%zu |\n", rows.size(), sum_bytes / 8, sum_coded, sum_rw,
                sum_bytes > 0 ? sum_rw / sum_bytes : 0.0, sum_coded > 0 ? sum_rw / sum_coded : 0.0, inferred, rows.size());
  return md + tot;
}

std::vector<int32_t> problem_context(const ChatModel& m, const std::string& problem) { return m.chat.user_prompt(*m.tokenizer, problem); }

std::string rewrite_json(const std::string& id, const std::string& bench, const std::string& reference_model, const RewriteResult& r,
                         bool conditioned) {
  const nlohmann::json j = {{"id", id},
                            {"bench", bench},
                            {"reference_model", reference_model},
                            {"original_bytes", r.original_bytes},
                            {"original_tokens", r.original_code.tokens},
                            {"original_coded_bits", r.original_code.coded_bits()},
                            {"rewrite_bytes", r.rewrite_bytes},
                            {"rewrite_tokens", r.rewrite_code.tokens},
                            {"rewrite_coded_bits", r.rewrite_code.coded_bits()},
                            {"positions", r.positions},
                            {"samples", static_cast<int64_t>(r.samples.size())},
                            {"inferred_answer", r.inferred_answer},
                            {"inferred_correct", r.inferred_correct},
                            {"conditioned", conditioned},
                            {"rewrite", r.rewrite}};
  return j.dump();
}

}  // namespace lorazip::gen
