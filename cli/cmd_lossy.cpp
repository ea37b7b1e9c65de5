// lorazip generate / qa encode|decode|eval / rewrite: the lossy protocols' subcommands. Each parses
// its options and calls the library (gen/): deterministic generation, QA compression with an
// oracle or model answerer, and succinct rewrite + lossless coding. Reports go to stderr, results
// (text, codes, tables) to stdout or the named files.
#include <CLI/CLI.hpp>

#include <cstdarg>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "cli/commands.h"
#include "common/fs.h"
#include "common/log.h"
#include "gen/answer.h"
#include "gen/harness.h"
#include "gen/qa.h"
#include "gen/rewrite.h"
#include "gen/setup.h"

namespace lorazip {
namespace {

// log_info with printf formatting.
__attribute__((format(printf, 1, 2))) void logf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char buf[4096];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  log_info(buf);
}

struct LossyOptions {
  std::string model;          // -m: the SLM / generating model (GGUF)
  std::string questioner;     // question writer (default: the SLM)
  std::string answerer = "oracle";  // oracle | self | a GGUF path
  std::string prompt, prompt_file;
  bool raw = false;
  double temperature = 0;
  int64_t top_k = 0;
  double top_p = 1.0;
  uint64_t seed = 0;
  int64_t max_tokens = 256;
  int64_t samples = 1;
  std::string config;         // qa / rewrite YAML
  std::string problem, problem_file, gold, code;
  std::string problems, reference, bench, reference_model, ids;
  int64_t limit = 5;
  bool no_self = false, no_simulate = false;
  std::string out;            // output prefix (qa eval, rewrite)
  std::vector<std::string> tables;  // qa table: result files
};

// OUT.jsonl written one record at a time (flushed), so a run stopped early keeps its finished problems.
class JsonlAppender {
 public:
  explicit JsonlAppender(const std::string& prefix) {
    if (prefix.empty()) return;
    path_ = prefix + ".jsonl";
    f_.open(path_, std::ios::binary | std::ios::trunc);
    if (!f_) throw std::runtime_error("cannot write " + path_ + ": check the -o prefix's directory");
  }
  void add(const std::string& line) {
    if (path_.empty()) return;
    f_ << line;
    if (line.empty() || line.back() != '\n') f_ << '\n';
    f_.flush();
    if (!f_) throw std::runtime_error("write to " + path_ + " failed (disk full?)");
  }

 private:
  std::string path_;
  std::ofstream f_;
};

std::string read_text(const std::string& inline_text, const std::string& file, const char* what) {
  if (!inline_text.empty() && !file.empty()) throw std::invalid_argument(std::string("give either --") + what + " or --" + what + "-file, not both");
  if (!file.empty()) return read_file(file);
  if (inline_text.empty()) throw std::invalid_argument(std::string("no ") + what + ": pass --" + what + " TEXT or --" + what + "-file FILE");
  return inline_text;
}

void need_model(const LossyOptions& o) {
  if (o.model.empty()) throw std::invalid_argument("no model: pass -m FILE.gguf (an instruct model, e.g. scripts/fetch_smollm2.sh)");
}

// The problems selected by --ids (comma list) or the first --limit.
std::vector<gen::QaProblem> select(const std::vector<gen::QaProblem>& all, const std::string& ids, int64_t limit) {
  std::vector<gen::QaProblem> out;
  if (!ids.empty()) {
    size_t pos = 0;
    while (pos <= ids.size()) {
      size_t end = ids.find(',', pos);
      if (end == std::string::npos) end = ids.size();
      const std::string id = ids.substr(pos, end - pos);
      bool found = false;
      for (const auto& p : all)
        if (p.id == id) {
          out.push_back(p);
          found = true;
        }
      if (!found) throw std::invalid_argument("--ids: no problem with id '" + id + "'");
      pos = end + 1;
    }
    return out;
  }
  for (const auto& p : all)
    if (static_cast<int64_t>(out.size()) < limit) out.push_back(p);
  return out;
}

int cmd_generate(const LossyOptions& o, const GlobalOptions& g) {
  need_model(o);
  const std::string prompt = read_text(o.prompt, o.prompt_file, "prompt");
  const gen::ChatModel m = gen::load_chat_model(o.model);
  gen::SamplingOptions s;
  s.temperature = o.temperature;
  s.top_k = o.top_k;
  s.top_p = o.top_p;
  s.seed = o.seed;
  s.max_tokens = o.max_tokens;
  std::vector<int32_t> ids;
  if (o.raw) {
    if (m.tokenizer->bos_id() >= 0) ids.push_back(m.tokenizer->bos_id());
    const std::vector<int32_t> t = m.tokenizer->encode(prompt);
    ids.insert(ids.end(), t.begin(), t.end());
    if (m.tokenizer->eos_id() >= 0) s.stop_tokens = {m.tokenizer->eos_id()};
  } else {
    ids = m.chat.user_prompt(*m.tokenizer, prompt);
    s.stop_tokens = m.chat.stop_tokens();
  }
  const std::vector<gen::Generation> out = gen::sample(*m.model, ids, o.samples, s, g.threads);
  for (size_t i = 0; i < out.size(); ++i) {
    const std::string text = m.tokenizer->decode(out[i].tokens);
    if (out.size() > 1) std::printf("--- sample %zu\n", i);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::printf("\n");
    logf("sample %zu: %zu tokens (%s), %lld engine positions", i, out[i].tokens.size(), out[i].stopped ? "stop token" : "limit",
             static_cast<long long>(out[i].positions));
  }
  return 0;
}

struct QaModels {
  gen::ChatModel slm, questioner_own;
  bool own_questioner = false;
  std::unique_ptr<gen::ChatModel> answer_model;
  const gen::ChatModel& questioner() const { return own_questioner ? questioner_own : slm; }
};

QaModels load_qa_models(const LossyOptions& o, bool need_answerer) {
  need_model(o);
  QaModels q;
  q.slm = gen::load_chat_model(o.model);
  if (!o.questioner.empty() && o.questioner != o.model) {
    q.questioner_own = gen::load_chat_model(o.questioner);
    q.own_questioner = true;
  }
  if (need_answerer && o.answerer != "oracle" && o.answerer != "self")
    q.answer_model = std::make_unique<gen::ChatModel>(o.answerer == o.model ? q.slm : gen::load_chat_model(o.answerer));
  return q;
}

std::unique_ptr<gen::Answerer> make_answerer(const LossyOptions& o, const QaModels& q, const gen::QaConfig& cfg, int threads) {
  if (o.answerer == "oracle") return std::make_unique<gen::OracleAnswerer>();
  if (o.answerer == "self") return std::make_unique<gen::ModelAnswerer>(q.slm, cfg, false, threads);
  return std::make_unique<gen::ModelAnswerer>(*q.answer_model, cfg, true, threads);
}

int cmd_qa_encode(const LossyOptions& o, const GlobalOptions& g) {
  const gen::QaConfig cfg = o.config.empty() ? gen::QaConfig{} : gen::load_qa_config(o.config);
  const std::string problem = read_text(o.problem, o.problem_file, "problem");
  if (o.gold.empty()) throw std::invalid_argument("qa encode needs --gold ANSWER (the sender knows the correct answer)");
  QaModels q = load_qa_models(o, true);
  auto answerer = make_answerer(o, q, cfg, g.threads);
  const gen::QaResult r = gen::qa_encode(q.slm, q.questioner(), *answerer, {"cli", problem, o.gold}, cfg, !o.no_simulate, g.threads);
  for (size_t i = 0; i < r.trace.questions.size(); ++i)
    logf("Q%zu: %s -> %s", i + 1, r.trace.questions[i].c_str(), r.trace.bits[i] ? "Yes" : "No");
  logf("first answer '%s', final answer '%s' (%s), %lld bits, receiver %s", r.trace.initial_answer.c_str(), r.trace.final_answer.c_str(),
           gen::answers_match(r.trace.final_answer, o.gold) ? "correct" : "wrong", static_cast<long long>(r.code.total_bits()),
           o.no_simulate ? "not simulated" : "agrees");
  std::printf("%s\n", r.code.to_string().c_str());
  return 0;
}

int cmd_qa_decode(const LossyOptions& o, const GlobalOptions& g) {
  const gen::QaConfig cfg = o.config.empty() ? gen::QaConfig{} : gen::load_qa_config(o.config);
  const std::string problem = read_text(o.problem, o.problem_file, "problem");
  const gen::QaCode code = gen::QaCode::parse(o.code);
  QaModels q = load_qa_models(o, false);
  const gen::QaTrace t = gen::qa_decode(q.slm, q.questioner(), problem, code.bits, cfg, g.threads);
  const bool ok = gen::check_matches(code, t.final_answer);
  std::printf("%s\n", t.final_answer.c_str());
  logf("final response:\n%s", t.final_response.c_str());
  if (code.accept >= 0) logf("accept bit: the sender's answerer judged this answer %s", code.accept ? "right" : "wrong");
  if (!ok) {
    std::fprintf(stderr, "lorazip: the check bits do not match the decoded answer: the code is corrupted or was made with other models/config\n");
    return 1;
  }
  return 0;
}

int cmd_qa_eval(const LossyOptions& o, const GlobalOptions& g) {
  const gen::QaConfig cfg = o.config.empty() ? gen::QaConfig{} : gen::load_qa_config(o.config);
  if (o.problems.empty() || o.reference.empty() || o.bench.empty() || o.reference_model.empty())
    throw std::invalid_argument("qa eval needs --problems FILE.jsonl, --reference FILE.jsonl, --bench NAME and --reference-model NAME");
  const auto problems = select(gen::load_problems(o.problems), o.ids, o.limit);
  const auto refs = gen::load_reference_answers(o.reference, o.bench, o.reference_model);
  QaModels q = load_qa_models(o, true);
  auto answerer = make_answerer(o, q, cfg, g.threads);
  JsonlAppender jsonl(o.out);
  const auto recs = gen::run_qa_eval(q.slm, q.questioner(), *answerer, problems, refs, cfg, !o.no_self, !o.no_simulate, g.threads,
                                     [&](const gen::QaEvalRecord& r) {
                                       jsonl.add(gen::qa_jsonl({r}, o.bench));
                                       logf("%s: gold '%s' slm '%s' self '%s' qa '%s' llm '%s' code %s", r.problem.id.c_str(),
                                                r.problem.gold.c_str(), r.slm_answer.c_str(), r.self_answer.c_str(), r.qa_answer.c_str(),
                                                r.llm_answer.c_str(), r.code.c_str());
                                     });
  const std::string md = gen::qa_markdown(recs);
  std::fwrite(md.data(), 1, md.size(), stdout);
  if (!o.out.empty()) write_file_atomic(o.out + ".md", md);
  return 0;
}

// The QA table of one or more qa eval result files (records in file order).
int cmd_qa_table(const LossyOptions& o) {
  std::vector<gen::QaEvalRecord> recs;
  for (const auto& f : o.tables) {
    const auto r = gen::parse_qa_jsonl(read_file(f), f);
    recs.insert(recs.end(), r.begin(), r.end());
  }
  const std::string md = gen::qa_markdown(recs);
  std::fwrite(md.data(), 1, md.size(), stdout);
  return 0;
}

int cmd_rewrite(const LossyOptions& o, const GlobalOptions& g) {
  const gen::RewriteConfig cfg = o.config.empty() ? gen::RewriteConfig{} : gen::load_rewrite_config(o.config);
  if (o.problems.empty() || o.reference.empty() || o.bench.empty() || o.reference_model.empty())
    throw std::invalid_argument("rewrite needs --problems FILE.jsonl, --reference FILE.jsonl, --bench NAME and --reference-model NAME "
                                "(the reference model's solutions are rewritten)");
  need_model(o);
  CodecIdentity id;
  const gen::ChatModel m = gen::load_chat_model(o.model, &id);
  const LmCodec codec(m.model, *m.tokenizer, id);
  const auto problems = select(gen::load_problems(o.problems), o.ids, o.limit);
  const auto refs = gen::load_reference_answers(o.reference, o.bench, o.reference_model);
  LmCodecOptions copt;
  copt.threads = g.threads;
  std::vector<std::pair<std::string, gen::RewriteResult>> rows;
  JsonlAppender jsonl(o.out);
  for (const auto& p : problems) {
    auto ref = refs.find(p.id);
    if (ref == refs.end()) continue;
    // Both texts coded given the problem, which the receiver holds (rewrite config `conditioned`).
    const std::vector<int32_t> ctx = cfg.conditioned ? gen::problem_context(m, p.problem) : std::vector<int32_t>{};
    copt.context = cfg.conditioned ? &ctx : nullptr;
    const gen::RewriteResult r = gen::rewrite_solution(m, codec, copt, p.problem, ref->second.answer, cfg, g.threads, &m, p.gold);
    jsonl.add(gen::rewrite_json(p.id, o.bench, o.reference_model, r, cfg.conditioned));
    logf("%s: rewrite (%lld bytes): %s", p.id.c_str(), static_cast<long long>(r.rewrite_bytes), r.rewrite.c_str());
    rows.emplace_back(p.id, r);
  }
  const std::string md = gen::rewrite_markdown(rows) + (cfg.conditioned ? "\n(both texts coded given the problem)\n" : "\n(both texts coded from BOS alone)\n");
  std::fwrite(md.data(), 1, md.size(), stdout);
  if (!o.out.empty()) write_file_atomic(o.out + ".md", md);
  return 0;
}

void add_sampling(CLI::App* c, LossyOptions& o) {
  c->add_option("--temperature", o.temperature, "0 = greedy; > 0 samples")->capture_default_str();
  c->add_option("--top-k", o.top_k, "keep the k most likely tokens (0 = all)")->capture_default_str();
  c->add_option("--top-p", o.top_p, "nucleus mass in (0, 1]")->capture_default_str();
  c->add_option("--seed", o.seed, "sampling seed")->capture_default_str();
  c->add_option("--max-tokens", o.max_tokens, "tokens to generate at most")->capture_default_str();
}

void add_roles(CLI::App* c, LossyOptions& o, bool answerer) {
  c->add_option("-m,--model", o.model, "the small model (SLM), a GGUF instruct model")->required();
  c->add_option("--questioner", o.questioner, "the question writer (GGUF; default: the SLM)");
  if (answerer) c->add_option("--answerer", o.answerer, "who answers: oracle (a rule on the gold answer), self (the SLM, no gold) or a GGUF")->capture_default_str();
  c->add_option("--config", o.config, "QA config (YAML: mode, n_questions, prompts, ...; see docs/lossy.md)");
}

}  // namespace

struct LossyCommands {
  LossyOptions o;
  CLI::App *generate = nullptr, *qa = nullptr, *qa_encode = nullptr, *qa_decode = nullptr, *qa_eval = nullptr, *qa_table = nullptr, *rewrite = nullptr;
};

LossyCommands* add_lossy_commands(CLI::App& app) {
  static LossyCommands c;
  LossyOptions& o = c.o;
  c.generate = app.add_subcommand("generate", "generate text with an instruct GGUF model on the coding engine (bit-reproducible on any machine)");
  c.generate->add_option("-m,--model", o.model, "GGUF instruct model")->required();
  c.generate->add_option("--prompt", o.prompt, "the user message");
  c.generate->add_option("--prompt-file", o.prompt_file, "file holding the user message");
  c.generate->add_flag("--raw", o.raw, "no chat template: BOS + the prompt's tokens, stop at EOS");
  c.generate->add_option("-n,--samples", o.samples, "continuations to sample (streams 0..n-1 of the seed)")->capture_default_str();
  add_sampling(c.generate, o);

  c.qa = app.add_subcommand("qa", "question-asking compression: a few yes/no bits steer a small model to an answer");
  c.qa->require_subcommand(1);
  c.qa_encode = c.qa->add_subcommand("encode", "run the protocol with the gold answer and print the code (bits, +/- accept, #check)");
  add_roles(c.qa_encode, o, true);
  c.qa_encode->add_option("--problem", o.problem, "problem text");
  c.qa_encode->add_option("--problem-file", o.problem_file, "file holding the problem");
  c.qa_encode->add_option("--gold", o.gold, "the correct final answer")->required();
  c.qa_encode->add_flag("--no-simulate", o.no_simulate, "skip the simulated receiver");
  c.qa_decode = c.qa->add_subcommand("decode", "regenerate the SLM's final answer from the problem and a code");
  add_roles(c.qa_decode, o, false);
  c.qa_decode->add_option("--problem", o.problem, "problem text");
  c.qa_decode->add_option("--problem-file", o.problem_file, "file holding the problem");
  c.qa_decode->add_option("--code", o.code, "the code printed by qa encode")->required();
  c.qa_eval = c.qa->add_subcommand("eval", "SLM alone, self-refinement, QA and a reference LLM on problems with gold answers");
  add_roles(c.qa_eval, o, true);
  c.qa_eval->add_option("--problems", o.problems, "JSONL {id, problem, target}")->required();
  c.qa_eval->add_option("--reference", o.reference, "JSONL {bench, id, model, answer, ...} of reference models")->required();
  c.qa_eval->add_option("--bench", o.bench, "bench name in the reference file (math500, mgsm_en)")->required();
  c.qa_eval->add_option("--reference-model", o.reference_model, "the reference LLM's name in that file")->required();
  c.qa_eval->add_option("--ids", o.ids, "comma-separated problem ids (default: the first --limit)");
  c.qa_eval->add_option("--limit", o.limit, "problems to run")->capture_default_str();
  c.qa_eval->add_flag("--no-self", o.no_self, "skip the self-refinement baseline");
  c.qa_eval->add_flag("--no-simulate", o.no_simulate, "skip the simulated receiver (halves the time)");
  c.qa_eval->add_option("-o,--out", o.out, "also write OUT.md and OUT.jsonl (one record per problem, written as each finishes)");
  c.qa_table = c.qa->add_subcommand("table", "the qa eval table (markdown) again from result files (OUT.jsonl of qa eval -o; several are joined)");
  c.qa_table->add_option("results", o.tables, "OUT.jsonl files of lorazip qa eval -o OUT")->required();

  c.rewrite = app.add_subcommand("rewrite", "succinct rewrite of reference solutions (N samples, shortest kept), coded losslessly");
  c.rewrite->add_option("-m,--model", o.model, "GGUF instruct model: writes, codes and infers")->required();
  c.rewrite->add_option("--config", o.config, "rewrite config (YAML: prompt, samples, temperature, ...; see docs/lossy.md)");
  c.rewrite->add_option("--problems", o.problems, "JSONL {id, problem, target}")->required();
  c.rewrite->add_option("--reference", o.reference, "JSONL of reference models' answers")->required();
  c.rewrite->add_option("--bench", o.bench, "bench name in the reference file")->required();
  c.rewrite->add_option("--reference-model", o.reference_model, "whose solutions to rewrite")->required();
  c.rewrite->add_option("--ids", o.ids, "comma-separated problem ids (default: the first --limit)");
  c.rewrite->add_option("--limit", o.limit, "problems to run")->capture_default_str();
  c.rewrite->add_option("-o,--out", o.out, "also write OUT.md and OUT.jsonl (one record per problem, written as each finishes)");
  return &c;
}

// -1 when none of the lossy subcommands was selected.
int run_lossy_command(LossyCommands* c, const GlobalOptions& g) {
  if (*c->generate) return cmd_generate(c->o, g);
  if (*c->qa_encode) return cmd_qa_encode(c->o, g);
  if (*c->qa_decode) return cmd_qa_decode(c->o, g);
  if (*c->qa_eval) return cmd_qa_eval(c->o, g);
  if (*c->qa_table) return cmd_qa_table(c->o);
  if (*c->rewrite) return cmd_rewrite(c->o, g);
  return -1;
}

}  // namespace lorazip
