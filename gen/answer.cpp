// Answer extraction and exact-match grading (see answer.h). Integer-only arithmetic on rationals;
// every index is checked against the string's length.
#include "gen/answer.h"

#include <cctype>
#include <cstring>
#include <numeric>

namespace lorazip::gen {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The text of the balanced {...} that opens at `open` (src[open] == '{'); npos end when unbalanced.
std::string_view braced(std::string_view s, size_t open, size_t* end) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    else if (s[i] == '}' && --depth == 0) {
      *end = i + 1;
      return s.substr(open + 1, i - open - 1);
    }
  }
  *end = std::string_view::npos;
  return {};
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

// Removes \cmd{...} groups (units) entirely.
std::string drop_groups(std::string s, std::string_view cmd) {
  size_t pos;
  while ((pos = s.find(cmd)) != std::string::npos) {
    size_t open = pos + cmd.size(), end = 0;
    if (open >= s.size() || s[open] != '{') {
      s.erase(pos, cmd.size());
      continue;
    }
    braced(s, open, &end);
    if (end == std::string_view::npos) end = s.size();
    s.erase(pos, end - pos);
  }
  return s;
}

bool mul_ok(int64_t a, int64_t b, int64_t* out) { return !__builtin_mul_overflow(a, b, out); }

std::optional<Rational> make(int64_t p, int64_t q) {
  if (q == 0) return std::nullopt;
  if (q < 0) {
    if (p == INT64_MIN || q == INT64_MIN) return std::nullopt;
    p = -p;
    q = -q;
  }
  const int64_t g = std::gcd(p < 0 ? -p : p, q);
  return Rational{p / (g ? g : 1), q / (g ? g : 1)};
}

// A decimal "-12.50" -> rational; whole string must be consumed.
std::optional<Rational> parse_decimal(std::string_view s) {
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  int64_t p = 0, q = 1;
  bool digits = false, dot = false;
  for (; i < s.size(); ++i) {
    if (is_digit(s[i])) {
      digits = true;
      if (!mul_ok(p, 10, &p) || __builtin_add_overflow(p, s[i] - '0', &p)) return std::nullopt;
      if (dot && !mul_ok(q, 10, &q)) return std::nullopt;
    } else if (s[i] == '.' && !dot) {
      dot = true;
    } else {
      return std::nullopt;
    }
  }
  if (!digits) return std::nullopt;
  return make(neg ? -p : p, q);
}

}  // namespace

std::string extract_answer(std::string_view r) {
  const size_t box = r.rfind("\\boxed");
  if (box != std::string_view::npos) {
    size_t open = box + 6;
    while (open < r.size() && r[open] == ' ') ++open;
    if (open < r.size() && r[open] == '{') {
      size_t end = 0;
      std::string_view in = braced(r, open, &end);
      if (end != std::string_view::npos) return std::string(in);
    }
  }
  std::string lower(r);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view cue : {"answer is", "answer:"}) {
    const size_t at = lower.rfind(cue);
    if (at == std::string::npos) continue;
    size_t i = at + cue.size();
    while (i < r.size() && (r[i] == ' ' || r[i] == ':' || r[i] == '$')) ++i;
    size_t j = i;
    while (j < r.size() && r[j] != '\n' && !(r[j] == '.' && (j + 1 == r.size() || r[j + 1] == ' ' || r[j + 1] == '\n'))) ++j;
    std::string out(r.substr(i, j - i));
    while (!out.empty() && (out.back() == ' ' || out.back() == '$')) out.pop_back();
    if (!out.empty()) return out;
  }
  // The last number (with sign, decimals, thousands commas).
  size_t end = std::string_view::npos;
  for (size_t i = r.size(); i-- > 0;)
    if (is_digit(r[i])) {
      end = i + 1;
      break;
    }
  if (end == std::string_view::npos) return "";
  size_t start = end;
  while (start > 0 && (is_digit(r[start - 1]) || ((r[start - 1] == '.' || r[start - 1] == ',') && start >= 2 && is_digit(r[start - 2]))))
    --start;
  if (start > 0 && r[start - 1] == '-') --start;
  return std::string(r.substr(start, end - start));
}

std::string normalize_answer(std::string_view a) {
  std::string s(a);
  s = drop_groups(s, "\\text");
  s = drop_groups(s, "\\mbox");
  s = drop_groups(s, "\\mathrm");
  for (std::string_view junk : {"\\left", "\\right", "\\!", "\\,", "\\;", "\\$", "$", "^\\circ", "^{\\circ}", "\\%", "%"})
    s = replace_all(s, junk, "");
  s = replace_all(s, "\\dfrac", "\\frac");
  s = replace_all(s, "\\tfrac", "\\frac");
  std::string t;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) t += c;
  // \frac{a}{b} -> (a)/(b) when a and b are plain; \frac ab (single characters) -> a/b.
  for (size_t pos; (pos = t.find("\\frac")) != std::string::npos;) {
    size_t i = pos + 5, e1 = 0, e2 = 0;
    std::string num, den;
    if (i < t.size() && t[i] == '{') {
      num = std::string(braced(t, i, &e1));
      if (e1 == std::string::npos) break;
      i = e1;
    } else if (i < t.size()) {
      num = t.substr(i, 1);
      i += 1;
    } else {
      break;
    }
    if (i < t.size() && t[i] == '{') {
      den = std::string(braced(t, i, &e2));
      if (e2 == std::string::npos) break;
      i = e2;
    } else if (i < t.size()) {
      den = t.substr(i, 1);
      i += 1;
    } else {
      break;
    }
    t = t.substr(0, pos) + num + "/" + den + t.substr(i);
  }
  // A leading "x=" (a single variable name).
  if (t.size() > 2 && std::isalpha(static_cast<unsigned char>(t[0])) && t[1] == '=') t = t.substr(2);
  // Thousands commas between digits: 1,000 -> 1000.
  std::string u;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == ',' && i > 0 && is_digit(t[i - 1]) && i + 3 < t.size() + 0 && is_digit(t[i + 1]) && is_digit(t[i + 2]) &&
        is_digit(t[i + 3]) && (i + 4 >= t.size() || !is_digit(t[i + 4])))
      continue;
    u += t[i];
  }
  while (!u.empty() && u.back() == '.') u.pop_back();
  for (char& c : u) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return u;
}

std::optional<Rational> parse_number(std::string_view s) {
  const size_t slash = s.find('/');
  if (slash == std::string_view::npos) return parse_decimal(s);
  auto a = parse_decimal(s.substr(0, slash)), b = parse_decimal(s.substr(slash + 1));
  if (!a || !b || b->p == 0) return std::nullopt;
  int64_t p, q;
  if (!mul_ok(a->p, b->q, &p) || !mul_ok(a->q, b->p, &q)) return std::nullopt;
  return make(p, q);
}

bool answers_match(std::string_view answer, std::string_view gold) {
  const std::string a = normalize_answer(answer), g = normalize_answer(gold);
  if (a.empty() || g.empty()) return false;
  const auto na = parse_number(a), ng = parse_number(g);
  if (na && ng) return *na == *ng;
  return a == g;
}

std::vector<Rational> numbers_in(std::string_view text) {
  // A '-' directly before a digit is a sign where it cannot be a binary minus: at the start or
  // after a space, an operator or an opening bracket ("or -3", "(-2"; not "x-4" or "x - 4").
  std::string marked(text);
  for (size_t i = 0; i + 1 < marked.size(); ++i)
    if (marked[i] == '-' && is_digit(marked[i + 1]) &&
        (i == 0 || std::strchr(" \t\n(=,[{+*/:", marked[i - 1]) != nullptr))
      marked[i] = '~';
  const std::string t = normalize_answer(marked);  // \frac{a}{b} -> a/b, commas and spaces gone
  std::vector<Rational> out;
  size_t i = 0;
  while (i < t.size()) {
    if (!is_digit(t[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < t.size() && (is_digit(t[j]) || (t[j] == '.' && j + 1 < t.size() && is_digit(t[j + 1])))) ++j;
    size_t k = j;
    if (k + 1 < t.size() && t[k] == '/' && is_digit(t[k + 1])) {
      ++k;
      while (k < t.size() && (is_digit(t[k]) || (t[k] == '.' && k + 1 < t.size() && is_digit(t[k + 1])))) ++k;
    }
    const bool sign = i > 0 && t[i - 1] == '~';
    if (auto r = parse_number(std::string_view(t).substr(i, k - i))) {
      if (sign) r->p = -r->p;
      out.push_back(*r);
    }
    i = k;
  }
  return out;
}

}  // namespace lorazip::gen
