// The QA evaluation harness (see harness.h).
#include "gen/harness.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/fs.h"
#include "gen/answer.h"
#include "gen/jsonl.h"

namespace lorazip::gen {
namespace {

void for_each_json_line(const std::string& path, const std::function<void(const nlohmann::json&, const std::string&)>& fn) {
  for_each_jsonl_object(read_file(path), path, "", fn);
}

}  // namespace

std::vector<QaProblem> load_problems(const std::string& path) {
  std::vector<QaProblem> out;
  for_each_json_line(path, [&](const nlohmann::json& j, const std::string& where) {
    out.push_back({json_text(j, "id", where), json_text(j, "problem", where), json_text(j, "target", where)});
  });
  return out;
}

std::map<std::string, ReferenceAnswer> load_reference_answers(const std::string& path, const std::string& bench, const std::string& model) {
  std::map<std::string, ReferenceAnswer> out;
  for_each_json_line(path, [&](const nlohmann::json& j, const std::string& where) {
    if (json_text(j, "bench", where) != bench || json_text(j, "model", where) != model) return;
    ReferenceAnswer r;
    r.answer = json_text(j, "answer", where);
    auto c = j.find("is_correct");
    r.file_correct = c != j.end() && c->is_boolean() && c->get<bool>();
    out[json_text(j, "id", where)] = r;
  });
  return out;
}

std::vector<QaEvalRecord> run_qa_eval(const ChatModel& slm, const ChatModel& questioner, Answerer& answerer,
                                      const std::vector<QaProblem>& problems, const std::map<std::string, ReferenceAnswer>& refs,
                                      const QaConfig& cfg, bool self_refine, bool simulate_receiver, int threads,
                                      const std::function<void(const QaEvalRecord&)>& progress) {
  std::vector<QaEvalRecord> out;
  for (const QaProblem& p : problems) {
    auto ref = refs.find(p.id);
    if (ref == refs.end()) continue;
    QaEvalRecord rec;
    rec.problem = p;
    const QaTrace asked = qa_ask(slm, questioner, p.problem, cfg, threads);
    rec.slm_answer = asked.initial_answer;
    rec.row.slm = answers_match(asked.initial_answer, p.gold);
    const QaResult qa = qa_encode(slm, questioner, answerer, p, cfg, simulate_receiver, threads, &asked);
    rec.qa_answer = qa.trace.final_answer;
    rec.row.qa = answers_match(qa.trace.final_answer, p.gold);
    rec.code = qa.code.to_string();
    rec.row.bits = qa.code.total_bits();
    rec.qa_positions = asked.positions + qa.trace.positions;
    rec.answerer_positions = qa.answerer_positions;
    if (self_refine) {
      ModelAnswerer self(slm, cfg, /*knows_gold=*/false, threads);
      QaConfig no_extras = cfg;
      no_extras.accept_bit = false;
      const QaResult s = qa_encode(slm, questioner, self, p, no_extras, false, threads, &asked);
      rec.self_answer = s.trace.final_answer;
      rec.row.self = answers_match(s.trace.final_answer, p.gold);
    }
    rec.llm_answer = extract_answer(ref->second.answer);
    rec.row.llm = answers_match(rec.llm_answer, p.gold);
    rec.row.llm_tokens = static_cast<int64_t>(slm.tokenizer->encode(ref->second.answer).size());
    rec.row.vocab = slm.tokenizer->vocab_size();
    rec.llm_bytes = static_cast<int64_t>(ref->second.answer.size());
    rec.slm_positions = asked.initial_positions;
    out.push_back(rec);
    if (progress) progress(out.back());
  }
  return out;
}

std::string qa_markdown(const std::vector<QaEvalRecord>& recs) {
  auto yn = [](bool b) { return b ? "✓" : "✗"; };
  std::string md = "| id | gold | SLM | self-refine | QA | LLM | code | bits | LLM tokens | ratio |\n|---|---|---|---|---|---|---|---:|---:|---:|\n";
  std::vector<QaRow> rows;
  char buf[64];
  for (const QaEvalRecord& r : recs) {
    rows.push_back(r.row);
    const double ratio = r.row.llm_tokens > 0 ? static_cast<double>(r.row.bits) / (static_cast<double>(r.row.llm_tokens) * std::log2(static_cast<double>(r.row.vocab))) : 0;
    std::snprintf(buf, sizeof buf, "%.5f", ratio);
    auto cell = [](const std::string& s) {
      std::string t;
      for (char c : s.substr(0, 24)) t += (c == '|' || c == '\n') ? ' ' : c;
      return t;
    };
    md += "| " + r.problem.id + " | " + cell(r.problem.gold) + " | " + cell(r.slm_answer) + " " + yn(r.row.slm) + " | " + cell(r.self_answer) + " " +
          yn(r.row.self) + " | " + cell(r.qa_answer) + " " + yn(r.row.qa) + " | " + cell(r.llm_answer) + " " + yn(r.row.llm) + " | `" + r.code +
          "` | " + std::to_string(r.row.bits) + " | " + std::to_string(r.row.llm_tokens) + " | " + buf + " |\n";
  }
  const QaSummary s = summarize(rows);
  char sum[512];
  std::snprintf(sum, sizeof sum,
                "\n| problems | SLM | self-refine | QA | LLM | gap recovered | mean ratio |\n|---:|---:|---:|---:|---:|---:|---:|\n"
                "| %lld | %.3f | %.3f | %.3f | %.3f | %s | %.5f |\n",
                static_cast<long long>(s.n), s.acc_slm, s.acc_self, s.acc_qa, s.acc_llm,
                std::isnan(s.gap_recovered) ? "n/a" : std::to_string(s.gap_recovered).c_str(), s.mean_ratio);
  return md + sum;
}

std::string qa_jsonl(const std::vector<QaEvalRecord>& recs, const std::string& bench) {
  std::string out;
  for (const QaEvalRecord& r : recs) {
    nlohmann::json j = {{"id", r.problem.id}, {"gold", r.problem.gold}, {"slm", r.slm_answer}, {"slm_correct", r.row.slm},
                        {"self", r.self_answer}, {"self_correct", r.row.self}, {"qa", r.qa_answer}, {"qa_correct", r.row.qa},
                        {"llm", r.llm_answer}, {"llm_correct", r.row.llm}, {"code", r.code}, {"bits", r.row.bits},
                        {"llm_tokens", r.row.llm_tokens}, {"llm_bytes", r.llm_bytes}, {"vocab", r.row.vocab},
                        {"qa_positions", r.qa_positions}, {"answerer_positions", r.answerer_positions}, {"slm_positions", r.slm_positions}};
    if (!bench.empty()) j["bench"] = bench;
    out += j.dump() + "\n";
  }
  return out;
}

std::vector<QaEvalRecord> parse_qa_jsonl(const std::string& text, const std::string& name) {
  std::vector<QaEvalRecord> out;
  for_each_jsonl_object(text, name, "expected a record of lorazip qa eval -o OUT: OUT.jsonl", [&](const nlohmann::json& j, const std::string& where) {
    QaEvalRecord r;
    r.problem.id = json_text(j, "id", where);
    r.problem.gold = json_text(j, "gold", where);
    r.slm_answer = json_text(j, "slm", where);
    r.self_answer = json_text(j, "self", where);
    r.qa_answer = json_text(j, "qa", where);
    r.llm_answer = json_text(j, "llm", where);
    r.code = json_text(j, "code", where);
    r.row.slm = json_flag(j, "slm_correct", where);
    r.row.self = json_flag(j, "self_correct", where);
    r.row.qa = json_flag(j, "qa_correct", where);
    r.row.llm = json_flag(j, "llm_correct", where);
    r.row.bits = json_count(j, "bits", where);
    r.row.llm_tokens = json_count(j, "llm_tokens", where);
    r.row.vocab = json_count(j, "vocab", where);
    r.llm_bytes = json_count(j, "llm_bytes", where);
    r.qa_positions = json_count(j, "qa_positions", where);
    r.answerer_positions = json_count(j, "answerer_positions", where);
    out.push_back(r);
  });
  if (out.empty()) throw std::runtime_error(name + ": no records");
  return out;
}

}  // namespace lorazip::gen
