// The QA compression protocol (see qa.h): one decode path shared by sender and receiver, so the
// sender's simulation of the receiver runs exactly the receiver's code.
#include "gen/qa.h"

#include <cctype>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "common/yaml_strict.h"
#include "gen/answer.h"
#include "gen/chat.h"

namespace lorazip::gen {
namespace {

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

SamplingOptions greedy(const ChatModel& m, int64_t max_tokens) {
  SamplingOptions o;
  o.max_tokens = max_tokens;
  o.stop_tokens = m.chat.stop_tokens();
  return o;
}

bool says_yes(const std::string& reply) {
  const std::string t = trim(reply);
  std::string head;
  for (size_t i = 0; i < t.size() && i < 3; ++i) head += static_cast<char>(std::tolower(static_cast<unsigned char>(t[i])));
  return head == "yes";
}

std::string qa_list(const std::vector<std::string>& questions, const std::vector<bool>& bits) {
  std::string out;
  for (size_t i = 0; i < questions.size(); ++i)
    out += "Q" + std::to_string(i + 1) + ": " + questions[i] + "\nA" + std::to_string(i + 1) + ": " + (bits[i] ? "Yes" : "No") + "\n";
  return out;
}

// Steps 1-2 of the protocol: the SLM's attempt and the questions (and candidates).
void ask(const ChatModel& slm, const ChatModel& questioner, const std::string& problem, const QaConfig& cfg, int threads,
         QaTrace& t) {
  const std::string solve = fill_template(cfg.solve_prompt, {{"problem", problem}});
  t.initial_response = chat_reply(slm, solve, greedy(slm, cfg.answer_tokens), threads, &t.positions);
  t.initial_answer = extract_answer(t.initial_response);
  t.initial_positions = t.positions;
  if (cfg.mode == "candidates") {
    if (!t.initial_answer.empty()) t.candidates.push_back(t.initial_answer);
    SamplingOptions o = greedy(slm, cfg.answer_tokens);
    o.temperature = cfg.candidate_temperature;
    o.seed = cfg.seed;
    const std::vector<int32_t> prompt = slm.chat.user_prompt(*slm.tokenizer, solve);
    for (const Generation& g : sample(*slm.model, prompt, cfg.candidate_samples, o, threads)) {
      t.positions += g.positions;
      const std::string a = extract_answer(slm.tokenizer->decode(g.tokens));
      if (a.empty()) continue;
      bool seen = false;
      for (const std::string& c : t.candidates) seen = seen || normalize_answer(c) == normalize_answer(a);
      if (!seen) t.candidates.push_back(a);
    }
    if (static_cast<int64_t>(t.candidates.size()) > cfg.n_questions) t.candidates.resize(static_cast<size_t>(cfg.n_questions));
    for (const std::string& c : t.candidates) t.questions.push_back("Is the final answer " + c + "?");
  } else {
    const std::string q = fill_template(cfg.question_prompt, {{"problem", problem}, {"attempt", t.initial_response},
                                                     {"n", std::to_string(cfg.n_questions)}});
    t.questions = parse_questions(chat_reply(questioner, q, greedy(questioner, cfg.question_tokens), threads, &t.positions),
                                  cfg.n_questions);
  }
}

// Steps 4: the final answer from the bits.
void conclude(const ChatModel& slm, const std::string& problem, const QaConfig& cfg, int threads, QaTrace& t) {
  if (cfg.mode == "candidates")
    for (size_t i = 0; i < t.candidates.size(); ++i)
      if (t.bits[i]) {
        t.final_answer = t.candidates[i];
        t.final_response = "The final answer is \\boxed{" + t.candidates[i] + "}.";
        return;
      }
  const std::string r = fill_template(cfg.revise_prompt, {{"problem", problem}, {"qa", qa_list(t.questions, t.bits)}});
  t.final_response = chat_reply(slm, r, greedy(slm, cfg.answer_tokens), threads, &t.positions);
  t.final_answer = extract_answer(t.final_response);
}

}  // namespace

QaTrace qa_ask(const ChatModel& slm, const ChatModel& questioner, const std::string& problem, const QaConfig& cfg, int threads) {
  check_config(cfg);
  QaTrace t;
  ask(slm, questioner, problem, cfg, threads, t);
  return t;
}

std::string chat_reply(const ChatModel& m, const std::string& user_text, const SamplingOptions& opt, int threads, int64_t* positions) {
  const std::vector<int32_t> prompt = m.chat.user_prompt(*m.tokenizer, user_text);
  const std::vector<Generation> g = generate(*m.model, {prompt}, opt, threads);
  if (positions) *positions += g[0].positions;
  return m.tokenizer->decode(g[0].tokens);
}

void check_config(const QaConfig& c) {
  if (c.mode != "questions" && c.mode != "candidates")
    throw std::invalid_argument("qa: mode must be 'questions' or 'candidates', got '" + c.mode + "'");
  if (c.n_questions < 1 || c.n_questions > 64) throw std::invalid_argument("qa: n_questions must be in 1..64");
  if (c.answer_tokens < 1 || c.question_tokens < 1 || c.judge_tokens < 1) throw std::invalid_argument("qa: token limits must be >= 1");
  if (c.candidate_samples < 1) throw std::invalid_argument("qa: candidate_samples must be >= 1");
  if (c.check_bits < 0 || c.check_bits > 32) throw std::invalid_argument("qa: check_bits must be in 0..32");
}

QaConfig load_qa_config(const std::string& path) {
  QaConfig c;
  YamlMap m = YamlMap::load_file(path);
  m.get("mode", c.mode);
  m.get("n_questions", c.n_questions);
  m.get("answer_tokens", c.answer_tokens);
  m.get("question_tokens", c.question_tokens);
  m.get("judge_tokens", c.judge_tokens);
  m.get("candidate_samples", c.candidate_samples);
  m.get("candidate_temperature", c.candidate_temperature);
  m.get("seed", c.seed);
  m.get("accept_bit", c.accept_bit);
  m.get("check_bits", c.check_bits);
  m.get("solve_prompt", c.solve_prompt);
  m.get("question_prompt", c.question_prompt);
  m.get("answer_prompt", c.answer_prompt);
  m.get("self_answer_prompt", c.self_answer_prompt);
  m.get("revise_prompt", c.revise_prompt);
  m.finish();
  check_config(c);
  return c;
}

bool answer_by_rule(const std::string& gold, const std::string& initial_answer, const std::string& question) {
  const std::vector<Rational> nums = numbers_in(question);
  const std::optional<Rational> g = parse_number(normalize_answer(gold));
  if (!nums.empty() && g) {
    for (const Rational& r : nums)
      if (r == *g) return true;
    return false;
  }
  if (!g) {
    // A non-numeric gold answer: Yes when the question quotes it (normalised), else the attempt's verdict.
    const std::string ng = normalize_answer(gold);
    if (!ng.empty() && normalize_answer(question).find(ng) != std::string::npos) return true;
    if (!nums.empty()) return false;
  }
  return answers_match(initial_answer, gold);
}

bool OracleAnswerer::accept(const QaProblem& p, const std::string& final_answer, int64_t*) {
  return answers_match(final_answer, p.gold);
}

bool ModelAnswerer::answer(const QaProblem& p, const std::string&, const std::string& question, int64_t* positions) {
  const std::string prompt = knows_gold_ ? fill_template(cfg_.answer_prompt, {{"problem", p.problem}, {"gold", p.gold}, {"question", question}})
                                         : fill_template(cfg_.self_answer_prompt, {{"problem", p.problem}, {"question", question}});
  return says_yes(chat_reply(m_, prompt, greedy(m_, cfg_.judge_tokens), threads_, positions));
}

bool ModelAnswerer::accept(const QaProblem& p, const std::string& final_answer, int64_t* positions) {
  return answer(p, final_answer, "Is the final answer " + final_answer + "?", positions);
}

std::string QaCode::to_string() const {
  std::string s;
  for (bool b : bits) s += b ? '1' : '0';
  if (accept >= 0) s += accept ? '+' : '-';
  if (check_bits > 0) {
    static const char* hex = "0123456789abcdef";
    s += '#';
    s += std::to_string(check_bits);
    s += ':';
    for (int sh = ((check_bits + 3) / 4 - 1) * 4; sh >= 0; sh -= 4) s += hex[(check >> sh) & 15];
  }
  return s;
}

QaCode QaCode::parse(const std::string& s) {
  QaCode c;
  size_t i = 0;
  for (; i < s.size() && (s[i] == '0' || s[i] == '1'); ++i) c.bits.push_back(s[i] == '1');
  if (c.bits.size() > 64) throw std::invalid_argument("qa code: more than 64 answer bits");
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) c.accept = s[i++] == '+';
  if (i < s.size() && s[i] == '#') {
    ++i;
    int n = 0;
    size_t digits = 0;
    for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && digits < 3; ++i, ++digits) n = n * 10 + (s[i] - '0');
    if (digits == 0 || n < 1 || n > 32 || i >= s.size() || s[i] != ':' || s[i - digits] == '0')
      throw std::invalid_argument("qa code: '#' must be followed by the check width (1..32) and ':'");
    ++i;
    const size_t want = static_cast<size_t>((n + 3) / 4);
    if (s.size() - i != want) throw std::invalid_argument("qa code: the check needs exactly " + std::to_string(want) + " hex digits");
    uint32_t v = 0;
    for (; i < s.size(); ++i) {
      const char ch = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
      const int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
      if (d < 0) throw std::invalid_argument(std::string("qa code: '") + s[i] + "' is not a hex digit");
      v = (v << 4) | static_cast<uint32_t>(d);
    }
    if (n < 32 && (v >> n) != 0) throw std::invalid_argument("qa code: the check value has more than " + std::to_string(n) + " bits");
    c.check_bits = n;
    c.check = v;
  }
  if (i != s.size()) throw std::invalid_argument(std::string("qa code: unexpected '") + s[i] + "' at position " + std::to_string(i) +
                                                 " (expected 0/1 bits, then optional +/- and #width:hex)");
  return c;
}

uint32_t answer_check(const std::string& final_answer, int check_bits) {
  // FNV-1a over the normalised answer: tiny, fixed, portable.
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : normalize_answer(final_answer)) h = (h ^ ch) * 0x100000001b3ull;
  return check_bits >= 32 ? static_cast<uint32_t>(h) : static_cast<uint32_t>(h & ((1ull << check_bits) - 1));
}

bool check_matches(const QaCode& code, const std::string& final_answer) {
  return code.check_bits == 0 || answer_check(final_answer, code.check_bits) == code.check;
}

std::vector<std::string> parse_questions(const std::string& reply, int64_t n) {
  std::vector<std::string> numbered, asked;
  size_t pos = 0;
  while (pos <= reply.size()) {
    size_t end = reply.find('\n', pos);
    if (end == std::string::npos) end = reply.size();
    const std::string line = trim(reply.substr(pos, end - pos));
    size_t i = 0;
    while (i < line.size() && std::isdigit(static_cast<unsigned char>(line[i]))) ++i;
    if (i > 0 && i < line.size() && (line[i] == '.' || line[i] == ')')) {
      const std::string q = trim(line.substr(i + 1));
      if (!q.empty()) numbered.push_back(q);
    } else if (!line.empty() && line.back() == '?') {
      asked.push_back(line);
    }
    pos = end + 1;
  }
  std::vector<std::string>& out = numbered.empty() ? asked : numbered;
  if (static_cast<int64_t>(out.size()) > n) out.resize(static_cast<size_t>(n));
  return out;
}

QaTrace qa_decode(const ChatModel& slm, const ChatModel& questioner, const std::string& problem, const std::vector<bool>& bits,
                  const QaConfig& cfg, int threads) {
  check_config(cfg);
  QaTrace t;
  ask(slm, questioner, problem, cfg, threads, t);
  if (bits.size() != t.questions.size())
    throw std::invalid_argument("qa decode: the code has " + std::to_string(bits.size()) + " answer bits but the models asked " +
                                std::to_string(t.questions.size()) + " questions (same models, prompts and config as the sender?)");
  t.bits = bits;
  conclude(slm, problem, cfg, threads, t);
  return t;
}

QaResult qa_encode(const ChatModel& slm, const ChatModel& questioner, Answerer& answerer, const QaProblem& p, const QaConfig& cfg,
                   bool simulate_receiver, int threads, const QaTrace* asked) {
  check_config(cfg);
  QaResult r;
  if (asked) {
    r.trace.initial_response = asked->initial_response;
    r.trace.initial_answer = asked->initial_answer;
    r.trace.questions = asked->questions;
    r.trace.candidates = asked->candidates;
  } else {
    ask(slm, questioner, p.problem, cfg, threads, r.trace);
  }
  for (const std::string& q : r.trace.questions)
    r.trace.bits.push_back(answerer.answer(p, r.trace.initial_answer, q, &r.answerer_positions));
  conclude(slm, p.problem, cfg, threads, r.trace);
  r.code.bits = r.trace.bits;
  if (cfg.accept_bit) r.code.accept = answerer.accept(p, r.trace.final_answer, &r.answerer_positions) ? 1 : 0;
  r.code.check_bits = cfg.check_bits;
  if (cfg.check_bits > 0) r.code.check = answer_check(r.trace.final_answer, cfg.check_bits);
  if (simulate_receiver) {
    const QaTrace back = qa_decode(slm, questioner, p.problem, r.code.bits, cfg, threads);
    r.receiver_agrees = back.final_response == r.trace.final_response && back.final_answer == r.trace.final_answer;
    if (!r.receiver_agrees)
      throw std::runtime_error("qa encode: problem '" + p.id + "': the simulated receiver reached '" + back.final_answer +
                               "' instead of '" + r.trace.final_answer + "' (generation is not deterministic here)");
  }
  return r;
}

QaSummary summarize(const std::vector<QaRow>& rows) {
  QaSummary s;
  s.n = static_cast<int64_t>(rows.size());
  if (rows.empty()) return s;
  double ratio = 0;
  for (const QaRow& r : rows) {
    s.acc_slm += r.slm;
    s.acc_self += r.self;
    s.acc_qa += r.qa;
    s.acc_llm += r.llm;
    if (r.llm_tokens > 0 && r.vocab > 1) ratio += static_cast<double>(r.bits) / (static_cast<double>(r.llm_tokens) * std::log2(static_cast<double>(r.vocab)));
  }
  const double n = static_cast<double>(rows.size());
  s.acc_slm /= n;
  s.acc_self /= n;
  s.acc_qa /= n;
  s.acc_llm /= n;
  s.mean_ratio = ratio / n;
  s.gap_recovered = s.acc_llm == s.acc_slm ? std::numeric_limits<double>::quiet_NaN() : (s.acc_qa - s.acc_slm) / (s.acc_llm - s.acc_slm);
  return s;
}

}  // namespace lorazip::gen
