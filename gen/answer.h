// Final answers of math responses: extraction (the last \boxed{...}, else "answer is ...", else the
// last number), normalisation, and grading by exact match — numerically (integers, decimals and
// fractions compared as exact rationals) when both sides are numbers, else as normalised text.
// The same rules grade lorazip's own runs and the oracle answerer of gen/qa.h.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lorazip::gen {

// The final answer a response states; "" when it states none.
std::string extract_answer(std::string_view response);

// Text form used for comparison: no $, spaces, \left/\right, \! or \, ; \dfrac/\tfrac -> \frac;
// \frac{a}{b} -> a/b; \text{..}/\mbox{..} units dropped; a leading "x =" dropped; thousands commas
// dropped; a trailing '.' dropped.
std::string normalize_answer(std::string_view answer);

// An exact rational p/q (q > 0, reduced), when `s` (normalised) is an integer, a decimal, a
// fraction of two such, or a negative of one; nullopt otherwise (or when it overflows 64 bits).
struct Rational {
  int64_t p = 0, q = 1;
  bool operator==(const Rational& o) const { return p == o.p && q == o.q; }
};
std::optional<Rational> parse_number(std::string_view normalized);

// Exact-match grading: equal as numbers when both parse, else equal normalised text; an empty
// answer never matches.
bool answers_match(std::string_view answer, std::string_view gold);

// The numeric literals in free text (integers, decimals, a/b and \frac{a}{b}), as rationals, in
// order of appearance: what the oracle answerer reads from a question.
std::vector<Rational> numbers_in(std::string_view text);

}  // namespace lorazip::gen
