// Slow check (label: slow): on SmolLM2-135M-Instruct (the cached GGUF) and the test split of
// ../shared/data/llm-text, coding each response given its prompt (rendered by the GGUF's chat
// template, as `lorazip compress --context-file` renders it) costs fewer bits than coding it from
// BOS alone, in every domain; and one conditioned file per domain decodes with its prompt. The same
// records as a conversation archive (each prompt coded, then its response given it) give the JSONL
// file back byte for byte, and their responses take fewer bytes than in a plain JSONL archive.
// Skipped when ../shared or the GGUF (scripts/fetch_smollm2.sh) is absent; it never downloads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <unistd.h>

#include "runtime/archive_io.h"
#include "codec/lm_codec.h"
#include "runtime/model_setup.h"
#include "data/prepare.h"
#include "gen/context.h"

using namespace lorazip;
namespace fs = std::filesystem;

namespace {

constexpr size_t kPerDomain = 6;

struct Record {
  std::string prompt, text, line;
};

// The first kPerDomain records with a prompt in prepare's test split, files in name order.
std::vector<Record> test_records(const fs::path& domain_dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(domain_dir))
    if (e.path().extension() == ".jsonl") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<Record> out;
  for (const auto& f : files) {
    std::ifstream in(f);
    std::string line;
    while (out.size() < kPerDomain && std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_object() || !j.contains("prompt") || !j["prompt"].is_string() || !j.contains("text") || !j["text"].is_string()) continue;
      Record r{j["prompt"].get<std::string>(), j["text"].get<std::string>(), line};
      if (r.prompt.empty() || r.text.empty() || split_of_document(r.text, SplitConfig{}) != 2) continue;
      out.push_back(std::move(r));
    }
  }
  return out;
}

// Where scripts/fetch_smollm2.sh keeps the GGUF ($LORAZIP_CACHE, else ~/.cache/lorazip).
fs::path cached_gguf() {
  const char* cache = std::getenv("LORAZIP_CACHE");
  const char* home = std::getenv("HOME");
  return fs::path(cache ? cache : std::string(home ? home : "") + "/.cache/lorazip") / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

}  // namespace

TEST(ConditionedSmolLM2, FewerBitsGivenThePromptInEveryDomain) {
  const fs::path data = fs::path(LORAZIP_SHARED_DIR) / "data/llm-text", gguf = cached_gguf();
  if (!fs::is_directory(data)) GTEST_SKIP() << data << " not found (../shared is absent)";
  if (!fs::exists(gguf)) GTEST_SKIP() << gguf << " not found (bash scripts/fetch_smollm2.sh fetches it)";
  LoadedModel base = load_model(gguf.string());
  CodecSet codecs(base);
  const LmCodec& codec = codecs.get("");
  const gen::ContextRenderer renderer(gguf.string(), *base.tokenizer, gen::ContextTemplate::Auto);
  std::vector<fs::path> domains;
  for (const auto& e : fs::directory_iterator(data))
    if (e.is_directory()) domains.push_back(e.path());
  std::sort(domains.begin(), domains.end());
  ASSERT_FALSE(domains.empty());
  for (const auto& d : domains) {
    const std::vector<Record> records = test_records(d);
    ASSERT_FALSE(records.empty()) << d << ": no test-split records with a prompt";
    double plain = 0, given = 0;
    for (size_t i = 0; i < records.size(); ++i) {
      const gen::RenderedContext ctx = renderer.render(records[i].prompt);
      const std::vector<int32_t> tokens = codec.tokenize(records[i].text);
      plain += codec.ideal_bits(tokens, 0, -1);
      given += codec.ideal_bits(tokens, 0, -1, 0, &ctx.tokens);
      if (i == 0) {
        LmCodecOptions o;
        o.format = ContainerFormat::Compact;
        o.context = &ctx.tokens;
        const std::string file = codec.compress(records[i].text, o);
        EXPECT_EQ(codec.decompress(file, d.filename().string(), 0, nullptr, nullptr, &ctx.tokens), records[i].text) << d;
      }
    }
    std::printf("[ conditioned ] %s: %zu responses, %.1f bits from BOS alone, %.1f given the prompt (%.1f%% saved)\n",
                d.filename().c_str(), records.size(), plain, given, 100.0 * (1.0 - given / plain));
    EXPECT_LT(given, plain) << d << ": the prompt did not lower the bits";
  }
}

TEST(ConditionedSmolLM2, ConversationArchiveRoundTripsAndCodesResponsesSmaller) {
  const fs::path data = fs::path(LORAZIP_SHARED_DIR) / "data/llm-text", gguf = cached_gguf();
  if (!fs::is_directory(data)) GTEST_SKIP() << data << " not found (../shared is absent)";
  if (!fs::exists(gguf)) GTEST_SKIP() << gguf << " not found (bash scripts/fetch_smollm2.sh fetches it)";
  std::string jsonl;
  std::vector<fs::path> domains;
  for (const auto& e : fs::directory_iterator(data))
    if (e.is_directory()) domains.push_back(e.path());
  std::sort(domains.begin(), domains.end());
  for (const auto& d : domains) {
    const std::vector<Record> records = test_records(d);
    for (size_t i = 0; i < std::min<size_t>(2, records.size()); ++i) jsonl += records[i].line + "\n";
  }
  ASSERT_FALSE(jsonl.empty());
  LoadedModel base = load_model(gguf.string());
  CodecSet codecs(base);
  const TurnRendererFactory renderers = gen::archive_turn_renderers(gguf.string(), *base.tokenizer);
  const fs::path dir = fs::temp_directory_path() / ("lorazip_conv_slow_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::vector<ArchiveWriteStats> st;
  AdapterSelector base_only(codecs, {});
  for (const bool conversations : {false, true}) {
    ArchiveCodingOptions opt;
    opt.conversations = conversations;
    opt.renderers = renderers;
    opt.turn_template = gen::resolve_turn_template(gguf.string(), *base.tokenizer, gen::ContextTemplate::Auto);
    const std::string path = (dir / (conversations ? "c.lza" : "p.lza")).string();
    st.push_back(archive_create(path, base_only, documents_from_jsonl(jsonl, conversations), opt, true));
    auto src = open_file_source(path);
    const ArchiveLayout L = read_archive_layout(*src, path);
    EXPECT_EQ(L.header.turn_template, conversations ? ArchiveTurnTemplate::BaseTemplate : ArchiveTurnTemplate::Plain);
    std::vector<size_t> records;
    for (size_t k = 0; k < L.index.members.size(); ++k)
      if (!L.index.members[k].same_record) records.push_back(k);
    std::string back;
    for (auto& e : archive_extract_members(*src, L, records, base_only, 0, path, nullptr, renderers)) {
      ASSERT_FALSE(e.error) << path;
      back += e.doc;
    }
    EXPECT_EQ(back, jsonl) << path;
  }
  fs::remove_all(dir);
  uint64_t responses = 0;
  for (const auto& [role, b] : st[1].by_role)
    if (role == "assistant") responses = b.data_bytes;
  ASSERT_GT(responses, 0u);
  EXPECT_LT(responses, st[0].data_bytes) << "the responses given their prompts take " << responses << " bytes, from BOS alone " << st[0].data_bytes;
}
