// Tests of the compression–compute frontier builder (gen/frontier.h) on hand-made result records and
// points: what the result files parse to, how the lossy points are derived, where the chart puts
// each point, that every point is labelled, and that malformed result files are refused by name.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>

#include "gen/frontier.h"
#include "gen/harness.h"

namespace lorazip::gen {
namespace {

const char* kRewriteLine1 =
    R"({"id":"7","bench":"math500","reference_model":"m","original_bytes":100,"original_tokens":30,"original_coded_bits":240,)"
    R"("rewrite_bytes":10,"rewrite_tokens":4,"rewrite_coded_bits":16,"positions":500,"samples":4,"inferred_answer":"3","inferred_correct":true,"rewrite":"x"})";
const char* kRewriteLine2 =
    R"({"id":"8","bench":"math500","reference_model":"m","original_bytes":300,"original_tokens":90,"original_coded_bits":720,)"
    R"("rewrite_bytes":20,"rewrite_tokens":6,"rewrite_coded_bits":24,"positions":700,"samples":4,"inferred_answer":"1","inferred_correct":false,"rewrite":"y"})";
const char* kQaLine =
    R"({"id":"1","bench":"mgsm_en","bits":11,"llm_bytes":400,"llm_tokens":97,"vocab":49152,"qa_positions":1000,"answerer_positions":0,)"
    R"("slm_correct":false,"self_correct":false,"qa_correct":true,"llm_correct":true,"code":"0000000001+"})";

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(Frontier, RewriteResultsParseAndSumToOnePoint) {
  const auto recs = parse_rewrite_results(std::string(kRewriteLine1) + "\n\n" + kRewriteLine2 + "\n", "rw.jsonl");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].id, "7");
  EXPECT_EQ(recs[1].original_bytes, 300);
  EXPECT_DOUBLE_EQ(recs[1].rewrite_coded_bits, 24);
  const FrontierPoint p = rewrite_point(recs, "math500 (2 responses)");
  EXPECT_EQ(p.kind, "lossy");
  EXPECT_DOUBLE_EQ(p.original_bytes, 400);
  EXPECT_DOUBLE_EQ(p.bits, 40);
  EXPECT_DOUBLE_EQ(p.ratio(), 40.0 / 3200.0);
  EXPECT_DOUBLE_EQ(p.positions, 500 + 700 + 2 * (4 + 6));  // sampling + inference, then coding and decoding the rewrite
  EXPECT_NE(p.note.find("1/2"), std::string::npos) << p.note;
}

TEST(Frontier, QaResultsParseAndCountSenderAndReceiver) {
  const auto recs = parse_qa_results(kQaLine, "qa.jsonl");
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_TRUE(recs[0].qa_correct);
  const FrontierPoint p = qa_point(recs, "mgsm_en (1 responses)", "oracle");
  EXPECT_EQ(p.label, "QA (oracle)");
  EXPECT_DOUBLE_EQ(p.bits, 11);
  EXPECT_DOUBLE_EQ(p.ratio(), 11.0 / 3200.0);
  EXPECT_DOUBLE_EQ(p.positions, 2000);
  EXPECT_DOUBLE_EQ(p.positions_per_byte(), 5);
}

TEST(Frontier, MalformedResultFilesAreRefusedNamingFileLineAndField) {
  std::string missing = kQaLine;
  missing.replace(missing.find("\"qa_positions\""), std::string("\"qa_positions\"").size(), "\"qa_pos\"");
  std::string e = error_of([&] { parse_qa_results(std::string(kQaLine) + "\n" + missing, "runs/qa.jsonl"); });
  EXPECT_NE(e.find("runs/qa.jsonl:2"), std::string::npos) << e;
  EXPECT_NE(e.find("'qa_positions'"), std::string::npos) << e;

  std::string negative = kRewriteLine1;
  negative.replace(negative.find("\"positions\":500"), std::string("\"positions\":500").size(), "\"positions\":-5");
  e = error_of([&] { parse_rewrite_results(negative, "rw.jsonl"); });
  EXPECT_NE(e.find("rw.jsonl:1"), std::string::npos) << e;
  EXPECT_NE(e.find("'positions'"), std::string::npos) << e;

  std::string wrong_type = kRewriteLine1;
  wrong_type.replace(wrong_type.find("\"inferred_correct\":true"), std::string("\"inferred_correct\":true").size(), "\"inferred_correct\":\"yes\"");
  e = error_of([&] { parse_rewrite_results(wrong_type, "rw.jsonl"); });
  EXPECT_NE(e.find("'inferred_correct'"), std::string::npos) << e;

  e = error_of([&] { parse_rewrite_results("{\"id\": 3", "broken.jsonl"); });
  EXPECT_NE(e.find("broken.jsonl:1"), std::string::npos) << e;
  e = error_of([&] { parse_qa_results("\n \n", "empty.jsonl"); });
  EXPECT_NE(e.find("empty.jsonl"), std::string::npos) << e;
  // A QA record is not a rewrite record: the first rewrite field it lacks is named.
  e = error_of([&] { parse_rewrite_results(kQaLine, "qa-as-rw.jsonl"); });
  EXPECT_NE(e.find("'reference_model'"), std::string::npos) << e;
}

FrontierPoint point(const std::string& label, const std::string& kind, double bytes, double bits, double positions) {
  FrontierPoint p;
  p.set = "set A";
  p.label = label;
  p.kind = kind;
  p.original_bytes = bytes;
  p.bits = bits;
  p.positions = positions;
  return p;
}

TEST(Frontier, ChartPlacesPointsOnLogAxesAndLabelsEach) {
  Frontier f;
  f.model = "tiny";
  f.parameters = 1000;
  // ratios 0.5, 0.1 and 1; positions per byte 0 (floor), 1 and 100.
  f.points = {point("gzip-9", "classical", 100, 400, 0), point("base LM", "lossless", 100, 80, 100),
              point("rewrite", "lossy", 100, 800, 10000)};
  const std::string svg = frontier_svg(f);
  // Layout (frontier.cpp): x decades 0..2 span [170, 710]; the floor is x = 120; y decades -1..0 span [520, 70].
  EXPECT_NE(svg.find("<circle cx=\"170\" cy=\"520\""), std::string::npos) << svg;  // base LM: 1 position/byte, ratio 0.1
  EXPECT_NE(svg.find("<path d=\"M710,63 "), std::string::npos) << svg;  // rewrite: 100 positions/byte, ratio 1 (a triangle's apex)
  const double gzip_y = 70 + (0 - std::log10(0.5)) * 450;
  char rect[96];
  std::snprintf(rect, sizeof rect, "<rect x=\"115\" y=\"%g\"", gzip_y - 5);
  EXPECT_NE(svg.find(rect), std::string::npos) << rect << "\n" << svg;  // gzip: at the floor
  for (const char* label : {">gzip-9 0.5<", ">base LM 0.1<", ">rewrite 1<", ">set A<", "(no model)"})
    EXPECT_NE(svg.find(label), std::string::npos) << label;

  const std::string md = frontier_markdown(f);
  EXPECT_NE(md.find("| set A | base LM | 100 | 80 | 0.1 | 100 | 1 | 2e+03 |"), std::string::npos) << md;  // FLOPs = 2 x 1000 x 1
  EXPECT_NE(md.find("| set A | gzip-9 | 100 | 400 | 0.5 | 0 | 0 | 0 |"), std::string::npos) << md;
  const std::string csv = frontier_csv(f);
  EXPECT_NE(csv.find("\"set A\",\"rewrite\",lossy,100,800,1,10000,100,200000,"), std::string::npos) << csv;
}

TEST(Frontier, PointsThatCannotBeDrawnAreRefused) {
  Frontier f;
  f.points = {point("base LM", "lossless", 100, 80, 0)};
  EXPECT_NE(error_of([&] { frontier_svg(f); }).find("positions"), std::string::npos);
  f.points = {point("QA", "lossy", 100, 0, 10)};
  EXPECT_NE(error_of([&] { frontier_markdown(f); }).find("positive"), std::string::npos);
  f.points = {point("x", "other", 100, 10, 10)};
  EXPECT_THROW(frontier_csv(f), std::invalid_argument);
  f.points.clear();
  EXPECT_THROW(frontier_svg(f), std::invalid_argument);
}

// `lorazip qa table`: the records written by qa eval read back give the same table.
TEST(QaTable, JsonlReadBackGivesTheSameTable) {
  QaEvalRecord a;
  a.problem.id = "1";
  a.problem.gold = "3";
  a.slm_answer = "64";
  a.self_answer = "10";
  a.qa_answer = "3";
  a.llm_answer = "3";
  a.code = "01+";
  a.row = {false, false, true, true, 3, 97, 49152};
  a.llm_bytes = 311;
  a.qa_positions = 900;
  QaEvalRecord b = a;
  b.problem.id = "43";
  b.row.qa = false;
  b.qa_answer = "7";
  const std::vector<QaEvalRecord> recs = {a, b};
  const auto back = parse_qa_jsonl(qa_jsonl(recs, "mgsm_en"), "qa.jsonl");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(qa_markdown(back), qa_markdown(recs));
  EXPECT_EQ(back[1].qa_answer, "7");
  EXPECT_EQ(back[0].qa_positions, 900);
  std::string bad = qa_jsonl({a});
  bad.replace(bad.find("\"slm_correct\""), 6, "\"xx");
  const std::string e = error_of([&] { parse_qa_jsonl(bad, "qa.jsonl"); });
  EXPECT_NE(e.find("qa.jsonl:1"), std::string::npos) << e;
  EXPECT_NE(e.find("'slm_correct'"), std::string::npos) << e;
  // A count beyond int64 is refused, not wrapped to a negative number.
  std::string huge = qa_jsonl({a});
  const size_t at = huge.find("\"bits\":");
  huge.replace(at, huge.find_first_of(",}", at) - at, "\"bits\":18446744073709551615");
  const std::string h = error_of([&] { parse_qa_jsonl(huge, "qa.jsonl"); });
  EXPECT_NE(h.find("'bits'"), std::string::npos) << h;
}

}  // namespace
}  // namespace lorazip::gen
