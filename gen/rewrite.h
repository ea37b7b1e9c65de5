// Succinct rewrite, then lossless coding (the seed paper's "rewrite" protocol): a solution's final
// answer is stripped, a model is asked (a prompt template from the config) to rewrite it as briefly
// as possible while keeping enough for a small model to infer the answer, N rewrites are sampled
// (seeded, gen/generate.h), the shortest is kept and coded with lorazip's LM codec. Ratios: the
// rewrite's coded bits against the original's UTF-8 bits and against the original's coded bits.
// Optionally a small model then answers from the rewrite alone, graded against the gold answer.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "codec/lm_codec.h"
#include "gen/qa.h"

namespace lorazip::gen {

struct RewriteConfig {
  // {problem} and {solution} (the solution with its final answer stripped) are replaced.
  std::string prompt =
      "Rewrite the solution below as briefly as you can. Keep only what a student needs to find the final answer; "
      "do not state the final answer.\n\nProblem: {problem}\n\nSolution: {solution}";
  // {problem} and {rewrite}: asks the inferring model for the final answer.
  std::string infer_prompt =
      "Problem: {problem}\n\nSolution sketch: {rewrite}\n\nFinish the solution and put the final answer in \\boxed{}.";
  int64_t samples = 4;        // N rewrites sampled, the shortest kept (>= 1)
  double temperature = 0.7;   // sampling temperature (0 = greedy: every sample is the same)
  int64_t top_k = 0;
  double top_p = 0.95;
  uint64_t seed = 1;
  int64_t max_tokens = 256;   // per rewrite
  int64_t infer_tokens = 256; // the inferring model's answer
  // Both texts (the original solution and the rewrite) coded given the problem, which the receiver
  // holds: the problem as a user turn in the model's chat template (conditioned coding,
  // docs/codec.md); false codes them from BOS alone.
  bool conditioned = true;
};
// Reads a YAML file whose keys are RewriteConfig's fields (unknown keys refused, naming them).
RewriteConfig load_rewrite_config(const std::string& path);
void check_config(const RewriteConfig& cfg);

// The solution without its final answer: each \boxed{...} (balanced braces) becomes "\boxed{?}";
// a solution with no \boxed loses its last non-empty line (where such responses state the answer).
std::string strip_final_answer(const std::string& solution);

struct RewriteResult {
  std::vector<std::string> samples;  // every rewrite, in stream order
  size_t chosen = 0;                 // the shortest non-empty one (bytes; the lowest index on ties)
  std::string rewrite;
  int64_t original_bytes = 0, rewrite_bytes = 0;
  CodeStats original_code, rewrite_code;  // LmCodec::compress of each (payload and file sizes)
  double ratio_vs_bytes = 0;  // rewrite coded bits / (8 * original bytes)
  double ratio_vs_coded = 0;  // rewrite coded bits / original coded bits
  int64_t positions = 0;      // engine rows run to sample the rewrites
  std::string inferred_answer;  // when an inferring model was given
  bool inferred_correct = false;
};

// `codec` codes both texts (its options `code_opt`; code_opt.context, when set, is what both are
// coded given: the problem rendered for the codec's model, see problem_context); `inferer`
// (nullable) answers from the rewrite and is graded against `gold` (answers_match).
RewriteResult rewrite_solution(const ChatModel& writer, const LmCodec& codec, const LmCodecOptions& code_opt, const std::string& problem,
                               const std::string& solution, const RewriteConfig& cfg, int threads, const ChatModel* inferer,
                               const std::string& gold);

// The Markdown table of a run: one row per (problem id, result), then the totals (bytes, coded bits,
// the ratios over all problems, answers recovered from the rewrites).
std::string rewrite_markdown(const std::vector<std::pair<std::string, RewriteResult>>& rows);

// The context both sides code a problem's texts given (cfg.conditioned): `problem` as a user turn
// in `m`'s chat template, ending with the assistant turn's opening.
std::vector<int32_t> problem_context(const ChatModel& m, const std::string& problem);

// One JSON object (no newline) recording a result for later readers (`lorazip frontier`): id, bench,
// reference_model, original_bytes, original_tokens, original_coded_bits, rewrite_bytes,
// rewrite_tokens, rewrite_coded_bits, positions, samples, inferred_answer, inferred_correct, rewrite,
// and conditioned (whether both were coded given the problem).
std::string rewrite_json(const std::string& id, const std::string& bench, const std::string& reference_model, const RewriteResult& r,
                         bool conditioned = false);

}  // namespace lorazip::gen
