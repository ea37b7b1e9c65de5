// End-to-end, slow (label slow): the embedded default job, configs/default.yaml, from scratch with
// its time limits lifted so that every stage runs all its steps (about 10 minutes on 2 idle cores).
// Checks the paper's effect at this scale: each specialised domain's adapter codes that domain's
// test text in at least 3% fewer bits than the general base, and a real document compresses and
// decompresses with the result.
#include <nlohmann/json.hpp>
#include <sstream>

#include "e2e/e2e_util.h"

using namespace e2e;

namespace {

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// configs/default.yaml with every path absolute (so the copy can live elsewhere) and no time
// limits: each stage then runs all its steps, and what the job learns does not depend on how busy
// the machine is.
std::string default_yaml_by_steps() {
  std::string text = slurp(kSource / "configs/default.yaml");
  auto replace_all = [&](const std::string& from, const std::string& to) {
    size_t n = 0;
    for (size_t p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size()), ++n) text.replace(p, from.size(), to);
    return n;
  };
  EXPECT_GT(replace_all("../data/samples/", (kSource / "data/samples").lexically_normal().string() + "/"), 0u);
  EXPECT_EQ(replace_all("model_file: model-tiny.yaml", "model_file: " + (kSource / "configs/model-tiny.yaml").string()), 1u);
  std::istringstream in(text);
  std::string out;
  size_t limits = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.find("time_limit_s:") != std::string::npos) line = "  time_limit_s: 0", ++limits;
    out += line + "\n";
  }
  EXPECT_EQ(limits, 2u) << "default.yaml should bound pretrain and train by time";
  return out;
}

TEST(E2eSlow, DefaultJobEndToEnd) {
  TempDir t;
  const fs::path work = t / "default";
  spill(t / "default.yaml", default_yaml_by_steps());
  Result r = lorazip({"run", (t / "default.yaml").string(), "--work-dir", work.string()}, t.path());
  ASSERT_EQ(r.rc, 0) << r.describe();
  std::printf("[ e2e ] lorazip run configs/default.yaml (no time limits): %.0f s\n", r.seconds);
  EXPECT_TRUE(has(r.out, "round trip byte for byte: ok")) << r.out;

  auto rep = nlohmann::json::parse(slurp(work / "report.json"));
  std::map<std::string, nlohmann::json> by_domain;
  for (const auto& d : rep["domains"]) by_domain[d.value("domain", "")] = d;
  for (const char* name : {"chat", "creative", "code", "math", "science"}) {
    ASSERT_TRUE(by_domain.count(name)) << rep.dump(2);
    const auto& d = by_domain[name];
    double base = d["ideal"].value("base_bits_per_token", 0.0), adapter = d["ideal"].value("adapter_bits_per_token", 0.0);
    std::printf("[ e2e ] %-9s base %.3f bits/token, adapter %.3f bits/token\n", name, base, adapter);
    EXPECT_EQ(d.value("own_adapter", ""), name);
    EXPECT_TRUE(d["coded_sample"].value("roundtrip_ok", false)) << name;
  }
  // Every stage ran to its step count: pretraining and the five adapters each say "(steps)".
  std::istringstream log(r.err);
  int by_steps = 0;
  for (std::string line; std::getline(log, line);) {
    const bool summary = (has(line, "] pretrain: ") || has(line, "] adapter ")) && has(line, " steps, ");
    if (!summary) continue;
    std::printf("%s\n", line.c_str());
    EXPECT_TRUE(has(line, "(steps)")) << "a stage stopped before its step count: " << line;
    by_steps += has(line, "(steps)");
  }
  EXPECT_EQ(by_steps, 6) << "expected the pretrain and five adapter summaries\n" << r.err;

  // The paper's effect: the base saw chat and creative only; the other domains reach the model
  // through their adapters, which code each domain's test text in at least 3% fewer bits.
  for (const char* name : {"code", "math", "science"}) {
    const auto& d = by_domain[name];
    const double base = d["ideal"].value("base_bits_per_token", 0.0), adapter = d["ideal"].value("adapter_bits_per_token", 1e9);
    EXPECT_LT(adapter, 0.97 * base) << name << ": the adapter saves less than 3% over the general base";
  }

  // A whole corpus file through the program with -A: it restores byte for byte.
  const fs::path doc = kSource / "data/samples/math.jsonl";
  Result c = lorazip({"compress", "-m", (work / "base").string(), "-A", (work / "adapters").string(), "-v", "-o", "math.lz", doc.string()},
                     t.path());
  ASSERT_EQ(c.rc, 0) << c.describe();
  Result d = lorazip({"decompress", "-m", (work / "base").string(), "-A", (work / "adapters").string(), "-c", "math.lz"}, t.path());
  ASSERT_EQ(d.rc, 0) << d.describe();
  EXPECT_EQ(d.out, slurp(doc));
  std::printf("[ e2e ] math.jsonl: %zu -> %zu bytes\n", static_cast<size_t>(fs::file_size(doc)),
              static_cast<size_t>(fs::file_size(t / "math.lz")));
}

}  // namespace
