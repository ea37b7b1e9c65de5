// Question-Asking (QA) compression, after the seed paper (RoyRin/model-compression-bit-limiting):
// a small model (SLM) answers a problem; a question writer asks yes/no questions about that
// attempt; an answering model that knows the gold answer replies, one bit per question; the SLM
// revises once from the problem and the question/answer list. Only the bits travel: the receiver
// reruns the same models deterministically (gen/generate.h, greedy), injects the bits and revises
// the same way, so it reaches the sender's final answer. Optional extras after the answer bits:
// an accept bit (the answerer's verdict on the final answer) and check bits (the low bits of a
// hash of the final answer, so a receiver notices a corrupted code).
//
// Two ways to write the questions (QaConfig::mode):
//  - "questions" (the paper's): the question writer generates up to n numbered questions from the
//    problem and the SLM's attempt; the final answer is the SLM's revision.
//  - "candidates": the SLM samples answers (seeded); the distinct extracted answers, the greedy
//    one first, become "Is the final answer X?" questions; the final answer is the first
//    candidate answered yes, else the SLM's revision. Meaningful even with very small models.
// The oracle answerer is a rule, not a model (answer_by_rule below); a local model can answer too.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codec/engine/engine.h"
#include "gen/chat.h"
#include "gen/generate.h"
#include "model/tokenizer.h"

namespace lorazip::gen {

// A chat model the protocol runs: the engine, its tokenizer and chat template.
struct ChatModel {
  std::string name;  // for reports (a file name)
  std::shared_ptr<const engine::Model> model;
  std::shared_ptr<const Tokenizer> tokenizer;
  ChatTemplate chat{0, 0, ""};
};

// One chat turn: the reply to `user_text` (chat template applied, generation to the turn's end
// or max_tokens). `positions` (optional) accumulates the engine rows run.
std::string chat_reply(const ChatModel& m, const std::string& user_text, const SamplingOptions& opt, int threads = 0,
                       int64_t* positions = nullptr);

struct QaProblem {
  std::string id;
  std::string problem;
  std::string gold;  // the gold final answer (sender side only)
};

// Prompt templates: {problem}, {attempt}, {n}, {question}, {gold}, {qa} are replaced.
struct QaConfig {
  std::string mode = "questions";  // "questions" or "candidates"
  int64_t n_questions = 10;        // bits per problem at most (1..64)
  int64_t answer_tokens = 384;     // max tokens of an SLM solution or revision
  int64_t question_tokens = 320;   // max tokens of the question writer's list
  int64_t judge_tokens = 6;        // max tokens of a model answerer's Yes/No
  int64_t candidate_samples = 8;   // "candidates": SLM samples
  double candidate_temperature = 0.8;
  uint64_t seed = 1;               // candidate sampling seed
  bool accept_bit = true;          // append the answerer's verdict on the final answer
  int check_bits = 0;              // append this many bits of the final answer's hash (0..32)
  std::string solve_prompt =
      "Solve this math problem step by step. Put the final answer in \\boxed{}.\n\nProblem: {problem}";
  std::string question_prompt =
      "Problem: {problem}\n\nAttempted solution: {attempt}\n\nWrite {n} yes/no questions that would show whether this "
      "attempt is right, each checking one step, calculation or the final answer. Number them 1 to {n}.";
  std::string answer_prompt =
      "Problem: {problem}\n\nCorrect final answer: {gold}\n\nQuestion: {question}\n\nReply with Yes or No only.";
  std::string self_answer_prompt = "Problem: {problem}\n\nQuestion: {question}\n\nReply with Yes or No only.";
  std::string revise_prompt =
      "Problem: {problem}\n\nYour earlier answer was checked with yes/no questions:\n{qa}\n\nUsing these answers, solve the "
      "problem again step by step and put the final answer in \\boxed{}.";
};
// std::invalid_argument naming the field for a value out of range.
void check_config(const QaConfig& cfg);
// A YAML file whose keys are QaConfig's fields (unknown keys refused, naming them).
QaConfig load_qa_config(const std::string& path);

// Who answers the questions on the sender's side.
class Answerer {
 public:
  virtual ~Answerer() = default;
  // The bit for `question` about `p` given the SLM's first answer; positions accumulates compute.
  virtual bool answer(const QaProblem& p, const std::string& initial_answer, const std::string& question, int64_t* positions) = 0;
  // The accept bit: is `final_answer` right?
  virtual bool accept(const QaProblem& p, const std::string& final_answer, int64_t* positions) = 0;
  virtual std::string name() const = 0;
};

// The oracle rule (no model): with g the gold answer, a question that contains a number equal to
// g (numbers_in) gets Yes; one that contains numbers but none equal to g gets No; a question
// without numbers gets Yes exactly when the SLM's first answer matches g ("is this right?").
// The accept bit is answers_match(final, g).
bool answer_by_rule(const std::string& gold, const std::string& initial_answer, const std::string& question);
class OracleAnswerer : public Answerer {
 public:
  bool answer(const QaProblem& p, const std::string& initial_answer, const std::string& question, int64_t*) override {
    return answer_by_rule(p.gold, initial_answer, question);
  }
  bool accept(const QaProblem& p, const std::string& final_answer, int64_t*) override;
  std::string name() const override { return "oracle"; }
};

// A local chat model answers (its reply starts with "yes", case-insensitively, = 1). With
// knows_gold it sees the gold answer (the paper's LLM); without it, it is the self-refinement
// baseline (the SLM answering its own questions).
class ModelAnswerer : public Answerer {
 public:
  ModelAnswerer(const ChatModel& m, const QaConfig& cfg, bool knows_gold, int threads)
      : m_(m), cfg_(cfg), knows_gold_(knows_gold), threads_(threads) {}
  bool answer(const QaProblem& p, const std::string& initial_answer, const std::string& question, int64_t* positions) override;
  bool accept(const QaProblem& p, const std::string& final_answer, int64_t* positions) override;
  std::string name() const override { return (knows_gold_ ? "model:" : "self:") + m_.name; }

 private:
  const ChatModel& m_;
  const QaConfig& cfg_;
  bool knows_gold_;
  int threads_;
};

// Everything one run of the protocol saw.
struct QaTrace {
  std::string initial_response, initial_answer;
  std::vector<std::string> questions;
  std::vector<std::string> candidates;  // "candidates" mode
  std::vector<bool> bits;               // one per question
  std::string final_response, final_answer;
  int64_t positions = 0;                // engine rows run by the SLM and question writer
  int64_t initial_positions = 0;        // of which the SLM's first answer
};

// What travels: the answer bits, then [accept], then [check_bits].
struct QaCode {
  std::vector<bool> bits;
  int accept = -1;      // -1: not sent
  uint32_t check = 0;   // low check_bits bits of answer_check(final answer)
  int check_bits = 0;
  // "0110110101" + ("+" or "-" for accept) + ("#" + check as hex); parse refuses anything else
  // (std::invalid_argument naming the character).
  std::string to_string() const;
  static QaCode parse(const std::string& s);
  int64_t total_bits() const { return static_cast<int64_t>(bits.size()) + (accept >= 0 ? 1 : 0) + check_bits; }
};
uint32_t answer_check(const std::string& final_answer, int check_bits);
// The receiver's check: true when `code` carries no check bits or they match `final_answer`.
bool check_matches(const QaCode& code, const std::string& final_answer);

// Steps 1-2 alone (what both sides run before the bits): the SLM's attempt, the questions and,
// in "candidates" mode, the candidate list.
QaTrace qa_ask(const ChatModel& slm, const ChatModel& questioner, const std::string& problem, const QaConfig& cfg, int threads = 0);

// The receiver: regenerates the SLM's attempt and the questions, takes the answers from `bits`
// (exactly one per question: std::invalid_argument otherwise), and derives the final answer.
// `questioner` is unused in "candidates" mode.
QaTrace qa_decode(const ChatModel& slm, const ChatModel& questioner, const std::string& problem, const std::vector<bool>& bits,
                  const QaConfig& cfg, int threads = 0);

struct QaResult {
  QaTrace trace;
  QaCode code;
  int64_t answerer_positions = 0;
  bool receiver_agrees = true;  // the simulated receiver reached the same final answer (when simulated)
};
// The sender: runs the protocol with `answerer`, then (simulate_receiver) runs qa_decode on the
// code's bits and checks it reproduces the final answer (std::runtime_error if it does not).
// `asked` (optional): the result of qa_ask for this problem and config, reused instead of rerun
// (the harness answers the same questions with several answerers).
QaResult qa_encode(const ChatModel& slm, const ChatModel& questioner, Answerer& answerer, const QaProblem& p,
                   const QaConfig& cfg, bool simulate_receiver, int threads = 0, const QaTrace* asked = nullptr);

// Questions from a question writer's reply: numbered lines ("1. ...", "2) ..."), else lines ending
// in '?', at most n, each trimmed.
std::vector<std::string> parse_questions(const std::string& reply, int64_t n);

// Accuracies of a set of graded runs and the paper's share of the SLM-LLM gap recovered.
struct QaRow {
  bool slm = false, self = false, qa = false, llm = false;
  int64_t bits = 0;        // bits sent for the QA run
  int64_t llm_tokens = 0;  // the reference LLM's response length in the SLM's tokens
  int64_t vocab = 0;       // V of that tokenizer
};
struct QaSummary {
  int64_t n = 0;
  double acc_slm = 0, acc_self = 0, acc_qa = 0, acc_llm = 0;
  double gap_recovered = 0;  // (acc_qa - acc_slm) / (acc_llm - acc_slm); NaN when acc_llm == acc_slm
  double mean_ratio = 0;     // mean over rows of bits / (llm_tokens * log2 V)
};
QaSummary summarize(const std::vector<QaRow>& rows);

}  // namespace lorazip::gen
