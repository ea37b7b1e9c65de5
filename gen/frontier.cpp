// The compression–compute frontier: result files read back, lossy points derived, the chart and
// tables written (see frontier.h).
#include "gen/frontier.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "common/fs.h"
#include "gen/jsonl.h"

namespace lorazip::gen {
namespace {

// fn(object, "NAME:LINE") for each record; a file without records is refused.
size_t each_object(const std::string& text, const std::string& name,
                   const std::function<void(const nlohmann::json&, const std::string&)>& fn) {
  const size_t n = for_each_jsonl_object(text, name, "is this a result file of lorazip rewrite / qa eval -o?", fn);
  if (n == 0) throw std::runtime_error(name + ": no records (the run wrote nothing yet, or this is not its OUT.jsonl)");
  return n;
}

std::string sig(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}
std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}
std::string xml(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '&') o += "&amp;";
    else if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}
std::string flops_per_byte(const Frontier& f, const FrontierPoint& p, int digits) {
  if (f.parameters <= 0 || p.kind == "classical") return "";
  return sig(2.0 * static_cast<double>(f.parameters) * p.positions_per_byte(), digits);
}

}  // namespace

std::vector<RewriteRecordIn> parse_rewrite_results(const std::string& text, const std::string& name) {
  std::vector<RewriteRecordIn> out;
  each_object(text, name, [&](const nlohmann::json& j, const std::string& where) {
    RewriteRecordIn r;
    r.id = json_text(j, "id", where);
    r.bench = json_text(j, "bench", where);
    r.reference_model = json_text(j, "reference_model", where);
    r.original_bytes = json_count(j, "original_bytes", where);
    if (r.original_bytes == 0) throw std::runtime_error(where + ": field 'original_bytes' is 0 (an empty original has no ratio)");
    r.original_coded_bits = json_bits(j, "original_coded_bits", where);
    r.rewrite_coded_bits = json_bits(j, "rewrite_coded_bits", where);
    r.rewrite_tokens = json_count(j, "rewrite_tokens", where);
    r.positions = json_count(j, "positions", where);
    r.inferred_correct = json_flag(j, "inferred_correct", where);
    out.push_back(r);
  });
  return out;
}

std::vector<QaRecordIn> parse_qa_results(const std::string& text, const std::string& name) {
  std::vector<QaRecordIn> out;
  each_object(text, name, [&](const nlohmann::json& j, const std::string& where) {
    QaRecordIn r;
    r.id = json_text(j, "id", where);
    r.bench = json_text(j, "bench", where);
    r.bits = json_count(j, "bits", where);
    r.llm_bytes = json_count(j, "llm_bytes", where);
    if (r.llm_bytes == 0) throw std::runtime_error(where + ": field 'llm_bytes' is 0 (an empty reference response has no ratio)");
    r.llm_tokens = json_count(j, "llm_tokens", where);
    r.vocab = json_count(j, "vocab", where);
    r.qa_positions = json_count(j, "qa_positions", where);
    r.answerer_positions = json_count(j, "answerer_positions", where);
    r.slm_correct = json_flag(j, "slm_correct", where);
    r.self_correct = json_flag(j, "self_correct", where);
    r.qa_correct = json_flag(j, "qa_correct", where);
    r.llm_correct = json_flag(j, "llm_correct", where);
    out.push_back(r);
  });
  return out;
}

std::vector<RewriteRecordIn> load_rewrite_results(const std::string& path) { return parse_rewrite_results(read_file(path), path); }
std::vector<QaRecordIn> load_qa_results(const std::string& path) { return parse_qa_results(read_file(path), path); }

double FrontierPoint::ratio() const { return original_bytes > 0 ? bits / (8.0 * original_bytes) : 0; }
double FrontierPoint::positions_per_byte() const { return original_bytes > 0 ? positions / original_bytes : 0; }

FrontierPoint rewrite_point(const std::vector<RewriteRecordIn>& records, const std::string& set) {
  if (records.empty()) throw std::invalid_argument("rewrite_point: no rewrite records");
  FrontierPoint p;
  p.set = set;
  p.label = "rewrite";
  p.kind = "lossy";
  int64_t kept = 0;
  for (const auto& r : records) {
    p.original_bytes += static_cast<double>(r.original_bytes);
    p.bits += r.rewrite_coded_bits;
    p.positions += static_cast<double>(r.positions) + 2.0 * static_cast<double>(r.rewrite_tokens);
    kept += r.inferred_correct;
  }
  p.note = "answer inferred from the rewrite: " + std::to_string(kept) + "/" + std::to_string(records.size());
  return p;
}

FrontierPoint qa_point(const std::vector<QaRecordIn>& records, const std::string& set, const std::string& answerer) {
  if (records.empty()) throw std::invalid_argument("qa_point: no QA records");
  FrontierPoint p;
  p.set = set;
  p.label = "QA (" + answerer + ")";
  p.kind = "lossy";
  int64_t right = 0, llm = 0;
  for (const auto& r : records) {
    p.original_bytes += static_cast<double>(r.llm_bytes);
    p.bits += static_cast<double>(r.bits);
    p.positions += 2.0 * static_cast<double>(r.qa_positions) + static_cast<double>(r.answerer_positions);
    right += r.qa_correct;
    llm += r.llm_correct;
  }
  p.note = "final answer right: " + std::to_string(right) + "/" + std::to_string(records.size()) + " (the original's: " + std::to_string(llm) +
           "/" + std::to_string(records.size()) + ")";
  return p;
}

void check_points(const Frontier& f) {
  if (f.points.empty()) throw std::invalid_argument("frontier: no points to draw");
  for (const auto& p : f.points) {
    const std::string who = "frontier point '" + p.label + "' on " + p.set;
    if (p.kind != "classical" && p.kind != "lossless" && p.kind != "lossy")
      throw std::invalid_argument(who + ": kind must be classical, lossless or lossy, got '" + p.kind + "'");
    if (!(p.original_bytes > 0)) throw std::invalid_argument(who + ": no original bytes");
    if (!(p.bits > 0) || !std::isfinite(p.bits)) throw std::invalid_argument(who + ": coded bits must be positive (a log axis), got " + sig(p.bits, 6));
    if (!(p.positions >= 0) || !std::isfinite(p.positions)) throw std::invalid_argument(who + ": negative or non-finite positions");
    if (p.kind != "classical" && p.positions <= 0) throw std::invalid_argument(who + ": a model point needs its forward positions");
  }
}

std::string frontier_markdown(const Frontier& f) {
  check_points(f);
  std::ostringstream o;
  o << "| texts | method | original bytes | coded bits | ratio (bits / original bits) | model positions | positions / byte | FLOPs / byte | note |\n"
    << "|---|---|---:|---:|---:|---:|---:|---:|---|\n";
  for (const auto& p : f.points) {
    const bool model = p.kind != "classical";
    o << "| " << p.set << " | " << p.label << " | " << fixed(p.original_bytes, 0) << " | " << fixed(p.bits, 0) << " | " << sig(p.ratio(), 4) << " | "
      << (model ? fixed(p.positions, 0) : "0") << " | " << (model ? sig(p.positions_per_byte(), 3) : "0") << " | "
      << (model ? flops_per_byte(f, p, 3) : "0") << " | " << p.note << " |\n";
  }
  return o.str();
}

std::string frontier_csv(const Frontier& f) {
  check_points(f);
  auto cell = [](const std::string& s) {
    std::string t = "\"";
    for (char c : s) t += c == '"' ? std::string("\"\"") : std::string(1, c);
    return t + "\"";
  };
  std::ostringstream o;
  o << "texts,method,kind,original_bytes,coded_bits,ratio,positions,positions_per_byte,flops_per_byte,note\n";
  for (const auto& p : f.points)
    o << cell(p.set) << "," << cell(p.label) << "," << p.kind << "," << fixed(p.original_bytes, 0) << "," << fixed(p.bits, 0) << "," << sig(p.ratio(), 6)
      << "," << fixed(p.positions, 0) << "," << sig(p.positions_per_byte(), 6) << "," << (p.kind == "classical" ? "0" : flops_per_byte(f, p, 6)) << ","
      << cell(p.note) << "\n";
  return o.str();
}

std::string frontier_svg(const Frontier& f) {
  check_points(f);
  const double W = 960, H = 600, left = 90, right = 250, top = 70, bottom = 80;
  const double floor_x = left + 30, axis_x0 = left + 80, axis_x1 = W - right;
  // Decades spanned by the model points (x) and by every point (y).
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const auto& p : f.points) {
    if (p.kind != "classical") {
      xlo = std::min(xlo, std::log10(p.positions_per_byte()));
      xhi = std::max(xhi, std::log10(p.positions_per_byte()));
    }
    ylo = std::min(ylo, std::log10(p.ratio()));
    yhi = std::max(yhi, std::log10(p.ratio()));
  }
  if (!std::isfinite(xlo)) xlo = xhi = 0;
  xlo = std::floor(xlo);
  xhi = std::max(std::ceil(xhi), xlo + 1);
  ylo = std::floor(ylo);
  yhi = std::max(std::ceil(yhi), ylo + 1);
  auto px = [&](const FrontierPoint& p) {
    if (p.kind == "classical") return floor_x;
    return axis_x0 + (std::log10(p.positions_per_byte()) - xlo) / (xhi - xlo) * (axis_x1 - axis_x0);
  };
  auto py = [&](double ratio) { return top + (yhi - std::log10(ratio)) / (yhi - ylo) * (H - top - bottom); };

  std::vector<std::string> sets;
  for (const auto& p : f.points)
    if (std::find(sets.begin(), sets.end(), p.set) == sets.end()) sets.push_back(p.set);
  const char* palette[] = {"#2b7bba", "#d9541e", "#2e9e44", "#8e44ad", "#b8860b", "#444444"};
  auto color = [&](const std::string& set) { return palette[(std::find(sets.begin(), sets.end(), set) - sets.begin()) % 6]; };
  auto marker = [&](std::ostringstream& o, const std::string& kind, double x, double y, const char* c) {
    if (kind == "classical") o << "<rect x=\"" << x - 5 << "\" y=\"" << y - 5 << "\" width=\"10\" height=\"10\" fill=\"" << c << "\"/>\n";
    else if (kind == "lossless") o << "<circle cx=\"" << x << "\" cy=\"" << y << "\" r=\"6\" fill=\"" << c << "\"/>\n";
    else o << "<path d=\"M" << x << "," << y - 7 << " L" << x + 7 << "," << y + 5 << " L" << x - 7 << "," << y + 5 << " Z\" fill=\"" << c << "\"/>\n";
  };

  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << W / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">Compression against compute"
    << (f.model.empty() ? "" : " (model: " + xml(f.model) + ")") << "</text>\n"
    << "<text x=\"" << W / 2 << "\" y=\"44\" text-anchor=\"middle\" font-size=\"11\">lower is smaller; lossy points send less than the original "
       "(see each point's answers kept)</text>\n";
  // Grid and ticks: decades, with 2 and 5 between when the y range is at most three decades.
  for (double d = ylo; d <= yhi + 1e-9; d += 1)
    for (double m : {1.0, 2.0, 5.0}) {
      const double v = m * std::pow(10.0, d);
      if (std::log10(v) > yhi + 1e-9 || (m != 1.0 && yhi - ylo > 3)) continue;
      o << "<line x1=\"" << left << "\" x2=\"" << axis_x1 << "\" y1=\"" << py(v) << "\" y2=\"" << py(v) << "\" stroke=\""
        << (m == 1.0 ? "#d0d0d0" : "#eeeeee") << "\"/>\n"
        << "<text x=\"" << left - 6 << "\" y=\"" << py(v) + 4 << "\" text-anchor=\"end\">" << sig(v, 3) << "</text>\n";
    }
  for (double d = xlo; d <= xhi + 1e-9; d += 1) {
    const double x = axis_x0 + (d - xlo) / (xhi - xlo) * (axis_x1 - axis_x0);
    o << "<line x1=\"" << x << "\" x2=\"" << x << "\" y1=\"" << top << "\" y2=\"" << H - bottom << "\" stroke=\"#d0d0d0\"/>\n"
      << "<text x=\"" << x << "\" y=\"" << H - bottom + 18 << "\" text-anchor=\"middle\">" << sig(std::pow(10.0, d), 3) << "</text>\n";
  }
  o << "<line x1=\"" << floor_x << "\" x2=\"" << floor_x << "\" y1=\"" << top << "\" y2=\"" << H - bottom << "\" stroke=\"#d0d0d0\" stroke-dasharray=\"3,3\"/>\n"
    << "<text x=\"" << floor_x << "\" y=\"" << H - bottom + 18 << "\" text-anchor=\"middle\">0</text>\n"
    << "<text x=\"" << floor_x << "\" y=\"" << H - bottom + 32 << "\" text-anchor=\"middle\" font-size=\"10\">(no model)</text>\n"
    << "<line x1=\"" << left << "\" x2=\"" << left << "\" y1=\"" << top << "\" y2=\"" << H - bottom << "\" stroke=\"black\"/>\n"
    << "<line x1=\"" << left << "\" x2=\"" << axis_x1 << "\" y1=\"" << H - bottom << "\" y2=\"" << H - bottom << "\" stroke=\"black\"/>\n"
    << "<text x=\"" << (axis_x0 + axis_x1) / 2 << "\" y=\"" << H - 22 << "\" text-anchor=\"middle\">model forward positions per original byte "
       "(sender + receiver; log scale"
    << (f.parameters > 0 ? "; FLOPs = 2 x " + sig(static_cast<double>(f.parameters), 4) + " parameters x positions" : "") << ")</text>\n"
    << "<text transform=\"translate(22," << (top + H - bottom) / 2 << ") rotate(-90)\" text-anchor=\"middle\">compressed bits / original UTF-8 bits "
       "(log scale)</text>\n";

  // Points, then labels placed right of each point, pushed down past labels already placed.
  std::vector<size_t> order(f.points.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return py(f.points[a].ratio()) < py(f.points[b].ratio()); });
  struct Box {
    double x0, x1, y;
  };
  std::vector<Box> placed;
  for (size_t i : order) {
    const FrontierPoint& p = f.points[i];
    const double x = px(p), y = py(p.ratio());
    const char* c = color(p.set);
    marker(o, p.kind, x, y, c);
    const std::string text = p.label + " " + sig(p.ratio(), 3);
    const double x0 = x + 10, x1 = x0 + 6.6 * static_cast<double>(text.size());
    double ly = y + 4;
    for (bool moved = true; moved;) {
      moved = false;
      for (const Box& b : placed)
        if (x0 < b.x1 && b.x0 < x1 && std::fabs(ly - b.y) < 13) {
          ly = b.y + 13;
          moved = true;
        }
    }
    placed.push_back({x0, x1, ly});
    if (ly - (y + 4) > 6)
      o << "<line x1=\"" << x + 4 << "\" y1=\"" << y + 2 << "\" x2=\"" << x0 - 1 << "\" y2=\"" << ly - 4 << "\" stroke=\"" << c << "\" stroke-width=\"0.6\"/>\n";
    o << "<text x=\"" << x0 << "\" y=\"" << ly << "\" fill=\"" << c << "\">" << xml(text) << "</text>\n";
  }
  // Legend: sets (colours) and kinds (markers).
  double ly = top + 6;
  const double lx = W - right + 20;
  for (const auto& s : sets) {
    o << "<rect x=\"" << lx << "\" y=\"" << ly - 9 << "\" width=\"10\" height=\"10\" fill=\"" << color(s) << "\"/>\n"
      << "<text x=\"" << lx + 16 << "\" y=\"" << ly << "\">" << xml(s) << "</text>\n";
    ly += 18;
  }
  ly += 8;
  const std::pair<const char*, const char*> kinds[] = {{"classical", "classical codec (no model)"}, {"lossless", "LM codec (lossless)"}, {"lossy", "lossy protocol"}};
  for (const auto& [k, name] : kinds) {
    marker(o, k, lx + 5, ly - 4, "#555555");
    o << "<text x=\"" << lx + 16 << "\" y=\"" << ly << "\">" << name << "</text>\n";
    ly += 18;
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace lorazip::gen
