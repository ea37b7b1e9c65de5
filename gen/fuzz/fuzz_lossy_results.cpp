// libFuzzer target for the result files that `lorazip frontier` and `lorazip qa table` read back:
// bytes -> parse_rewrite_results, parse_qa_results (gen/frontier.h) and parse_qa_jsonl
// (gen/harness.h). A user may hand over any file, so hostile input must end in the documented
// std::runtime_error naming the file, never a crash; every record that parses has no negative count.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "gen/frontier.h"
#include "gen/harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  try {
    for (const auto& r : lorazip::gen::parse_rewrite_results(input, "fuzz"))
      if (r.original_bytes < 0 || r.rewrite_tokens < 0 || r.positions < 0) __builtin_trap();
  } catch (const std::runtime_error&) {
  }
  try {
    for (const auto& r : lorazip::gen::parse_qa_results(input, "fuzz"))
      if (r.bits < 0 || r.llm_bytes < 0 || r.llm_tokens < 0 || r.qa_positions < 0 || r.answerer_positions < 0) __builtin_trap();
  } catch (const std::runtime_error&) {
  }
  try {
    for (const auto& r : lorazip::gen::parse_qa_jsonl(input, "fuzz"))
      if (r.row.bits < 0 || r.llm_bytes < 0 || r.qa_positions < 0 || r.answerer_positions < 0) __builtin_trap();
  } catch (const std::runtime_error&) {
  }
  return 0;
}
