// The evaluation harness of the lossy protocols on problems with gold answers: problem sets and
// reference models' answers from JSONL ({id, problem, target}; {bench, id, model, answer, pred,
// is_correct}), one QA run per problem (SLM alone, self-refinement, QA with the configured
// answerer, the reference LLM), graded by exact match (gen/answer.h), summarised as the paper's
// columns.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gen/qa.h"

namespace lorazip::gen {

// std::runtime_error naming file:line for a line that is not a JSON object with string fields
// id, problem and target.
std::vector<QaProblem> load_problems(const std::string& path);

struct ReferenceAnswer {
  std::string answer;  // the model's full response
  bool file_correct = false;  // the file's own verdict (is_correct)
};
// The answers of `model` on `bench` (e.g. "math500", "llama-3.2-1b-instruct"), by problem id.
std::map<std::string, ReferenceAnswer> load_reference_answers(const std::string& path, const std::string& bench, const std::string& model);

struct QaEvalRecord {
  QaProblem problem;
  QaRow row;
  std::string slm_answer, self_answer, qa_answer, llm_answer;
  std::string code;            // QaCode::to_string of the QA run
  int64_t slm_positions = 0;   // engine rows of the SLM's first answer (the "SLM alone" cost)
  int64_t qa_positions = 0;    // engine rows of the whole QA decode (SLM + question writer)
  int64_t answerer_positions = 0;
  int64_t llm_bytes = 0;       // the reference response's UTF-8 bytes
};

// One record per problem that has a reference answer (others are skipped). `self_refine` adds the
// self-refinement baseline (the SLM answers its own questions, without the gold answer).
// `progress` (optional) is called after each problem.
std::vector<QaEvalRecord> run_qa_eval(const ChatModel& slm, const ChatModel& questioner, Answerer& answerer,
                                      const std::vector<QaProblem>& problems, const std::map<std::string, ReferenceAnswer>& refs,
                                      const QaConfig& cfg, bool self_refine, bool simulate_receiver, int threads,
                                      const std::function<void(const QaEvalRecord&)>& progress = {});

// A markdown table: one row per problem, then the summary row (accuracies, gap recovered, ratio).
std::string qa_markdown(const std::vector<QaEvalRecord>& records);
// One JSON object per line; a non-empty `bench` is recorded in each (the reference file's bench name,
// so a later reader such as `lorazip frontier` can find the reference responses).
std::string qa_jsonl(const std::vector<QaEvalRecord>& records, const std::string& bench = "");

// The records of qa_jsonl read back (for `lorazip qa table`, e.g. on the finished part of a stopped
// run or on several runs' files concatenated). std::runtime_error "NAME:LINE: field 'F' ..." for a
// line that is not such a record.
std::vector<QaEvalRecord> parse_qa_jsonl(const std::string& text, const std::string& name);

}  // namespace lorazip::gen
