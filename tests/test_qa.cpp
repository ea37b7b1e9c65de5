// The QA compression protocol (gen/qa.h) and answer grading (gen/answer.h): sender and receiver
// agree across thread counts, a flipped bit changes the decoded answer deterministically and the
// check bits say so, the oracle recovers gold answers whenever the candidate list holds them, the
// summary matches hand-computed figures, and the code's text form refuses malformed input.
// Tiny engine models (tests/gen_tiny.h); torch-free.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "gen/answer.h"
#include "gen/chat.h"
#include "gen/qa.h"
#include "tests/gen_tiny.h"

using namespace lorazip;
using namespace lorazip::gen;

namespace {

QaConfig small_config(const std::string& mode) {
  QaConfig c;
  c.mode = mode;
  c.answer_tokens = 24;
  c.question_tokens = 60;
  c.candidate_samples = 8;
  c.candidate_temperature = 1.0;
  c.check_bits = 16;
  return c;
}

std::vector<std::string> synthetic_problems() {
  std::vector<std::string> p;
  for (int i = 0; i < 8; ++i) p.push_back("Problem " + std::to_string(i) + ": what is " + std::to_string(3 * i + 4) + " times 7?");
  return p;
}

}  // namespace

TEST(PromptTemplate, FillsEveryPlaceholderInOnePass) {
  // A problem that itself contains "{solution}" must reach the model as written.
  EXPECT_EQ(fill_template("P: {problem}\nS: {solution} {problem}", {{"problem", "x {solution} y"}, {"solution", "42"}}),
            "P: x {solution} y\nS: 42 x {solution} y");
  EXPECT_EQ(fill_template("{unknown} {a}{a} {a", {{"a", "1"}}), "{unknown} 11 {a");
  EXPECT_EQ(fill_template("", {{"a", "1"}}), "");
  EXPECT_EQ(fill_template("{", {{"a", "1"}}), "{");
}

TEST(Answer, ExtractsBoxedThenCueThenLastNumber) {
  EXPECT_EQ(extract_answer("so \\boxed{\\frac{5}{9}} and \\boxed{18}"), "18");
  EXPECT_EQ(extract_answer("x = \\boxed{\\frac{1}{2}}."), "\\frac{1}{2}");
  EXPECT_EQ(extract_answer("The answer is 42. Done"), "42");
  EXPECT_EQ(extract_answer("we get 3, then 1,250 apples"), "1,250");
  EXPECT_EQ(extract_answer("total -7"), "-7");
  EXPECT_EQ(extract_answer("no number here"), "");
  EXPECT_EQ(extract_answer("\\boxed{unbalanced"), "");  // falls through to the last number: none
}

TEST(Answer, GradesByExactNumericMatch) {
  EXPECT_TRUE(answers_match("\\frac{5}{9}", "\\frac 59"));
  EXPECT_TRUE(answers_match("5/9", "\\dfrac{5}{9}"));
  EXPECT_TRUE(answers_match("x = 5", "x=5"));
  EXPECT_TRUE(answers_match("1,250", "1250"));
  EXPECT_TRUE(answers_match("18.0", "18"));
  EXPECT_TRUE(answers_match("$864 \\mbox{ inches}^2$", "864 \\mbox{ inches}^2"));
  EXPECT_FALSE(answers_match("17", "18"));
  EXPECT_FALSE(answers_match("", "18"));
  EXPECT_FALSE(answers_match("0.55", "5/9"));
  EXPECT_TRUE(answers_match("(1,2)", "(1, 2)"));
  const std::vector<Rational> n = numbers_in("Is x - 4 equal to \\frac{10}{4} or -3?");
  ASSERT_EQ(n.size(), 3u);
  EXPECT_EQ(n[0], (Rational{4, 1}));
  EXPECT_EQ(n[1], (Rational{5, 2}));
  EXPECT_EQ(n[2], (Rational{-3, 1}));
}

TEST(Answer, OracleRuleFollowsTheDocumentedCases) {
  EXPECT_TRUE(answer_by_rule("18", "16", "Is the greater integer 18?"));
  EXPECT_FALSE(answer_by_rule("18", "16", "Is the greater integer 16?"));
  EXPECT_TRUE(answer_by_rule("18", "16", "Did you compute 16 times 18 correctly?"));  // mentions 18
  EXPECT_TRUE(answer_by_rule("18", "18", "Is the method right?"));  // no number: the attempt's verdict
  EXPECT_FALSE(answer_by_rule("18", "16", "Is the method right?"));
  EXPECT_TRUE(answer_by_rule("\\frac{5}{9}", "", "Is it 5/9?"));
  EXPECT_TRUE(answer_by_rule("(1,2)", "", "Is the point (1, 2)?"));
}

TEST(QaCode, TextFormRoundTripsAndRefusesMalformedInput) {
  QaCode c;
  c.bits = {true, false, true, true};
  c.accept = 0;
  c.check_bits = 12;
  c.check = 0xabc;
  EXPECT_EQ(c.to_string(), "1011-#12:abc");
  const QaCode back = QaCode::parse(c.to_string());
  EXPECT_EQ(back.bits, c.bits);
  EXPECT_EQ(back.accept, 0);
  EXPECT_EQ(back.check_bits, 12);
  EXPECT_EQ(back.check, 0xabcu);
  EXPECT_EQ(back.total_bits(), 4 + 1 + 12);
  EXPECT_EQ(QaCode::parse("").bits.size(), 0u);
  for (const char* bad : {"10x", "1+#", "1#0:", "1#33:000000000", "1#12:abcd", "1#4:g", "1#4:f0", "+-", "1#4:1x", "1#04:f"})
    EXPECT_THROW(QaCode::parse(bad), std::invalid_argument) << bad;
}

TEST(QaCode, ParseQuestionsTakesNumberedLinesFirst) {
  EXPECT_EQ(parse_questions("Sure:\n1. Is it 5?\n2) Is x odd?\nWhy?\n3. \n", 10), (std::vector<std::string>{"Is it 5?", "Is x odd?"}));
  EXPECT_EQ(parse_questions("Is it 5?\nmaybe\nIs it 6?", 1), (std::vector<std::string>{"Is it 5?"}));
  EXPECT_TRUE(parse_questions("nothing", 3).empty());
}

TEST(Qa, SenderAndReceiverAgreeAcrossThreadCounts) {
  const ChatModel slm = test::tiny_chat_model(7), writer = test::tiny_chat_model(8);
  OracleAnswerer oracle;
  int with_bits = 0;
  for (const std::string mode : {"questions", "candidates"}) {
    const QaConfig cfg = small_config(mode);
    for (const std::string& problem : synthetic_problems()) {
      const QaProblem p{"p", problem, "35"};
      const QaResult sent = qa_encode(slm, writer, oracle, p, cfg, /*simulate_receiver=*/true, /*threads=*/1);
      EXPECT_TRUE(sent.receiver_agrees);
      for (int threads : {2, 3}) {
        const QaTrace got = qa_decode(slm, writer, problem, sent.code.bits, cfg, threads);
        EXPECT_EQ(got.final_response, sent.trace.final_response) << mode << ", " << threads << " threads";
        EXPECT_EQ(got.final_answer, sent.trace.final_answer);
        EXPECT_TRUE(check_matches(sent.code, got.final_answer));
      }
      with_bits += !sent.code.bits.empty();
    }
  }
  EXPECT_GE(with_bits, 8) << "the tiny models asked too few questions for the test to mean anything";
}

TEST(Qa, OracleRecoversGoldWheneverTheCandidateListHoldsIt) {
  const ChatModel slm = test::tiny_chat_model(7);
  OracleAnswerer oracle;
  const QaConfig cfg = small_config("candidates");
  int tried = 0;
  for (const std::string& problem : synthetic_problems()) {
    const QaTrace asked = qa_ask(slm, slm, problem, cfg, 1);
    if (asked.candidates.size() < 2) continue;
    for (size_t k = 0; k < asked.candidates.size(); ++k) {
      const QaProblem p{"p", problem, asked.candidates[k]};  // a gold answer the list holds, at position k
      const QaResult r = qa_encode(slm, slm, oracle, p, cfg, false, 1);
      EXPECT_TRUE(answers_match(r.trace.final_answer, p.gold)) << problem << " candidate " << k;
      EXPECT_EQ(r.code.accept, 1);
      ++tried;
    }
    // A gold answer outside the list: every bit is No, the SLM revises, and the accept bit says
    // whether that worked.
    const QaProblem miss{"p", problem, "123456789"};
    const QaResult r = qa_encode(slm, slm, oracle, miss, cfg, false, 1);
    for (bool b : r.code.bits) EXPECT_FALSE(b);
    EXPECT_EQ(r.code.accept, answers_match(r.trace.final_answer, miss.gold) ? 1 : 0);
  }
  EXPECT_GE(tried, 8) << "too few candidate lists with two or more answers";
}

TEST(Qa, FlippedBitChangesTheAnswerDeterministicallyAndTheCheckSaysSo) {
  const ChatModel slm = test::tiny_chat_model(7);
  OracleAnswerer oracle;
  const QaConfig cfg = small_config("candidates");
  int flips = 0;
  for (const std::string& problem : synthetic_problems()) {
    const QaTrace asked = qa_ask(slm, slm, problem, cfg, 1);
    if (asked.candidates.size() < 2) continue;
    const QaProblem p{"p", problem, asked.candidates.back()};
    const QaResult sent = qa_encode(slm, slm, oracle, p, cfg, false, 1);
    std::vector<bool> bad = sent.code.bits;
    bad[0] = !bad[0];  // now candidate 0 is the first Yes
    const QaTrace a = qa_decode(slm, slm, problem, bad, cfg, 1), b = qa_decode(slm, slm, problem, bad, cfg, 2);
    EXPECT_EQ(a.final_response, b.final_response);  // deterministic
    EXPECT_EQ(a.final_answer, asked.candidates[0]);
    EXPECT_FALSE(answers_match(a.final_answer, sent.trace.final_answer));
    QaCode received = sent.code;
    received.bits = bad;
    EXPECT_FALSE(check_matches(received, a.final_answer)) << "16 check bits missed the corruption";
    EXPECT_TRUE(check_matches(sent.code, sent.trace.final_answer));
    ++flips;
  }
  EXPECT_GE(flips, 3);
  // A code whose length does not fit the questions is refused.
  const std::string problem = synthetic_problems()[0];
  const QaTrace asked = qa_ask(slm, slm, problem, cfg, 1);
  std::vector<bool> wrong(asked.questions.size() + 1, false);
  EXPECT_THROW(qa_decode(slm, slm, problem, wrong, cfg, 1), std::invalid_argument);
}

TEST(Qa, SummaryMatchesHandComputedFigures) {
  // 4 problems; V = 256 (log2 V = 8). SLM right on 1, self on 1, QA on 3, LLM on 4.
  std::vector<QaRow> rows(4);
  rows[0] = {true, true, true, true, 10, 100, 256};
  rows[1] = {false, false, true, true, 10, 50, 256};
  rows[2] = {false, false, true, true, 11, 25, 256};
  rows[3] = {false, false, false, true, 10, 10, 256};
  const QaSummary s = summarize(rows);
  EXPECT_EQ(s.n, 4);
  EXPECT_DOUBLE_EQ(s.acc_slm, 0.25);
  EXPECT_DOUBLE_EQ(s.acc_self, 0.25);
  EXPECT_DOUBLE_EQ(s.acc_qa, 0.75);
  EXPECT_DOUBLE_EQ(s.acc_llm, 1.0);
  EXPECT_DOUBLE_EQ(s.gap_recovered, (0.75 - 0.25) / (1.0 - 0.25));  // 2/3
  // ratios 10/800, 10/400, 11/200, 10/80 -> mean 0.0540625
  EXPECT_NEAR(s.mean_ratio, (0.0125 + 0.025 + 0.055 + 0.125) / 4, 1e-15);
  rows[3].llm = false;
  rows[1].llm = rows[2].llm = false;
  EXPECT_TRUE(std::isnan(summarize(rows).gap_recovered));  // LLM no better than the SLM
}
