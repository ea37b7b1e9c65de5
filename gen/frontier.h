// The compression–compute frontier of the lossy protocols (`lorazip frontier`): the result files of
// `lorazip rewrite` and `lorazip qa eval` read back (refusing malformed records by file, line and
// field), their points derived, and points of any codec on the same texts drawn as one SVG chart
// (compression ratio against engine positions per original byte, log-log) plus Markdown/CSV tables.
// Torch-free: the caller measures the classical and LM codecs and adds their points.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lorazip::gen {

// One problem of a `lorazip rewrite -o OUT` run (OUT.jsonl).
struct RewriteRecordIn {
  std::string id, bench, reference_model;
  int64_t original_bytes = 0;
  double original_coded_bits = 0, rewrite_coded_bits = 0;
  int64_t rewrite_tokens = 0;
  int64_t positions = 0;  // engine rows: the N sampled rewrites plus the answer inferred from the kept one
  bool inferred_correct = false;
};
// One problem of a `lorazip qa eval -o OUT` run (OUT.jsonl).
struct QaRecordIn {
  std::string id, bench;
  int64_t bits = 0, llm_bytes = 0, llm_tokens = 0, vocab = 0;
  int64_t qa_positions = 0, answerer_positions = 0;
  bool slm_correct = false, self_correct = false, qa_correct = false, llm_correct = false;
};

// Parse JSONL text; `name` (the file) prefixes every error: std::runtime_error "NAME:LINE: field
// 'F' ..." for a line that is not a JSON object, a missing field, a field of the wrong type or a
// negative count; also when the text holds no record.
std::vector<RewriteRecordIn> parse_rewrite_results(const std::string& text, const std::string& name);
std::vector<QaRecordIn> parse_qa_results(const std::string& text, const std::string& name);
std::vector<RewriteRecordIn> load_rewrite_results(const std::string& path);
std::vector<QaRecordIn> load_qa_results(const std::string& path);

struct FrontierPoint {
  std::string set;    // the texts the point is measured on (e.g. "MATH-500 (10)")
  std::string label;  // the method, e.g. "gzip-9", "base LM", "rewrite"
  std::string kind;   // "classical" (no model; drawn at the floor), "lossless" (LM codec) or "lossy"
  std::string note;   // shown in the table (e.g. answers kept)
  double original_bytes = 0;
  double bits = 0;       // compressed (coded) bits
  double positions = 0;  // model forward positions, sender and receiver together (0 for classical)
  double ratio() const;             // bits / (8 x original_bytes)
  double positions_per_byte() const;
};

struct Frontier {
  std::string model;       // the model whose positions are counted
  int64_t parameters = 0;  // its parameter count (FLOPs = 2 x parameters x positions); 0 = unknown
  std::vector<FrontierPoint> points;
};

// The lossy points. Rewrite: bits = the kept rewrites' coded bits; positions = the run's recorded
// positions (sampling all N rewrites, inferring the answer from the kept one) + 2 x the rewrite's
// tokens (coding and decoding it). QA: bits = the code's bits; positions = 2 x qa_positions (the
// sender's SLM + question writer + revision, rerun identically by the receiver) + the answerer's.
// Both against the original (reference) responses' UTF-8 bytes. std::invalid_argument when empty.
FrontierPoint rewrite_point(const std::vector<RewriteRecordIn>& records, const std::string& set);
FrontierPoint qa_point(const std::vector<QaRecordIn>& records, const std::string& set, const std::string& answerer);

// std::invalid_argument when a point has no bytes, negative bits/positions, or a model point
// (lossless/lossy) has no positions.
void check_points(const Frontier& f);
std::string frontier_markdown(const Frontier& f);
std::string frontier_csv(const Frontier& f);
// Log-log scatter: x = positions per original byte (classical codecs at a labelled floor left of
// every model point), y = compression ratio; one colour per set, one marker per kind, every point
// labelled.
std::string frontier_svg(const Frontier& f);

}  // namespace lorazip::gen
