// The peer benchmark's runner (bench/peer.h) against stand-in scripts run by /bin/sh: the
// arguments reach the script in order, the child inherits the environment, every figure is parsed,
// and each failure (exit status, signal, bad or incomplete JSON, no interpreter) is an error that
// names the command and quotes the end of its stderr. No Python and no model needed.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bench/peer.h"

using namespace lorazip;
namespace fs = std::filesystem;

namespace {

// The object bench/peer_llamacpp.py prints, written from its header's field list.
nlohmann::json sample_figures(bool with_llama_zip) {  // with_llama_zip false: OMP_NUM_THREADS unset too
  nlohmann::json j = {
      {"peer", "llama.cpp"}, {"llama_cpp_python", "0.3.36"}, {"system_info", "CPU : AVX2 = 1 |"},
      {"model", "m.gguf"}, {"threads", 2}, {"files", 2}, {"bytes", 3000}, {"loadavg_1m_start", 0.5}, {"omp_num_threads_inherited", "1"},
      {"n_ctx", 512}, {"pp_max", 512}, {"tg_max", 256}, {"repeat", 3}, {"doc_tokens", 700}, {"load_s", 0.125},
      {"pp_tokens", 700}, {"pp_s", 3.5}, {"pp_tok_s", 200.0}, {"tg_tokens", 512}, {"tg_s", 8.0},
      {"tg_tok_s", 64.0}, {"peak_rss_llamacpp_mib", 180.5}, {"peak_rss_mib", 350.25},
      {"loadavg_1m_end", 1.5}, {"llama_zip", nullptr}};
  if (!with_llama_zip) j["omp_num_threads_inherited"] = nullptr;
  if (with_llama_zip)
    j["llama_zip"] = {{"threads", 2}, {"n_ctx", 8192}, {"tokens", 702}, {"load_s", 0.25},
                      {"compress_s", 10.25}, {"decompress_s", 11.5}, {"bytes_in", 3000},
                      {"bytes_out", 375}, {"round_trip_exact", true}};
  return j;
}

class PeerRunner : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "lorazip-test-peer.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // A request whose "python" is sh and whose "script" is `body`.
  PeerRequest request(const std::string& body) {
    PeerRequest r;
    r.python = "sh";  // looked up in PATH
    r.script = write("fake_peer.sh", body);
    r.gguf = "model dir/m.gguf";
    r.threads = 2;
    r.repeat = 3;
    r.files = {"a.txt", "--b.txt"};
    return r;
  }

  // The message of the std::runtime_error that run_peer_llamacpp throws (fails if none).
  static std::string error_of(const PeerRequest& r) {
    try {
      run_peer_llamacpp(r);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    ADD_FAILURE() << "run_peer_llamacpp did not throw";
    return "";
  }

  fs::path dir_;
};

TEST_F(PeerRunner, ArgumentsReachTheScriptInOrderAndEveryFigureIsParsed) {
  std::string json = write("out.json", sample_figures(true).dump() + "\n");
  std::string args = (dir_ / "args.txt").string();
  PeerRequest r = request("for a in \"$@\"; do printf '%s\\n' \"$a\" >> '" + args + "'; done\ncat '" + json + "'\n");
  r.llama_zip_dir = "/opt/llama zip";
  PeerFigures f = run_peer_llamacpp(r);

  EXPECT_EQ(read(args), "model dir/m.gguf\n2\n--repeat\n3\n--llama-zip\n/opt/llama zip\n--\na.txt\n--b.txt\n");
  EXPECT_EQ(f.llama_cpp_python, "0.3.36");
  EXPECT_EQ(f.system_info, "CPU : AVX2 = 1 |");
  EXPECT_EQ(f.model, "m.gguf");
  EXPECT_EQ(f.threads, 2);
  EXPECT_EQ(f.files, 2);
  EXPECT_EQ(f.bytes, 3000);
  EXPECT_EQ(f.doc_tokens, 700);
  EXPECT_EQ(f.pp_max, 512);
  EXPECT_EQ(f.tg_max, 256);
  EXPECT_EQ(f.repeat, 3);
  EXPECT_DOUBLE_EQ(f.load_s, 0.125);
  EXPECT_EQ(f.pp_tokens, 700);
  EXPECT_DOUBLE_EQ(f.pp_s, 3.5);
  EXPECT_DOUBLE_EQ(f.pp_tok_s, 200.0);
  EXPECT_EQ(f.tg_tokens, 512);
  EXPECT_DOUBLE_EQ(f.tg_s, 8.0);
  EXPECT_DOUBLE_EQ(f.tg_tok_s, 64.0);
  EXPECT_DOUBLE_EQ(f.peak_rss_llamacpp_mib, 180.5);
  EXPECT_DOUBLE_EQ(f.peak_rss_mib, 350.25);
  EXPECT_EQ(f.omp_num_threads_inherited, "1");
  EXPECT_DOUBLE_EQ(f.loadavg_1m_start, 0.5);
  EXPECT_DOUBLE_EQ(f.loadavg_1m_end, 1.5);
  ASSERT_TRUE(f.llama_zip.has_value());
  EXPECT_EQ(f.llama_zip->threads, 2);
  EXPECT_EQ(f.llama_zip->n_ctx, 8192);
  EXPECT_EQ(f.llama_zip->tokens, 702);
  EXPECT_DOUBLE_EQ(f.llama_zip->load_s, 0.25);
  EXPECT_DOUBLE_EQ(f.llama_zip->compress_s, 10.25);
  EXPECT_DOUBLE_EQ(f.llama_zip->decompress_s, 11.5);
  EXPECT_EQ(f.llama_zip->bytes_in, 3000);
  EXPECT_EQ(f.llama_zip->bytes_out, 375);
  EXPECT_TRUE(f.llama_zip->round_trip_exact);
  EXPECT_EQ(f.json, sample_figures(true).dump());  // kept as printed, newline trimmed
}

TEST_F(PeerRunner, WithoutALlamaZipDirTheFlagIsNotPassedAndItsFiguresAreEmpty) {
  std::string json = write("out.json", sample_figures(false).dump());
  std::string args = (dir_ / "args.txt").string();
  PeerRequest r = request("printf '%s ' \"$@\" > '" + args + "'\ncat '" + json + "'\n");
  PeerFigures f = run_peer_llamacpp(r);
  EXPECT_EQ(read(args), "model dir/m.gguf 2 --repeat 3 -- a.txt --b.txt ");
  EXPECT_FALSE(f.llama_zip.has_value());
  EXPECT_EQ(f.omp_num_threads_inherited, "");  // null: unset
}

TEST_F(PeerRunner, TheChildInheritsTheEnvironment) {
  ASSERT_EQ(setenv("LORAZIP_PEER_TEST_MARK", "inherited 42", 1), 0);
  std::string json = write("out.json", sample_figures(false).dump());
  std::string seen = (dir_ / "seen.txt").string();
  run_peer_llamacpp(request("printf '%s' \"$LORAZIP_PEER_TEST_MARK\" > '" + seen + "'\ncat '" + json + "'\n"));
  unsetenv("LORAZIP_PEER_TEST_MARK");
  EXPECT_EQ(read(seen), "inherited 42");
}

TEST_F(PeerRunner, ANonZeroExitNamesTheCommandAndQuotesTheLast20LinesOfStderr) {
  PeerRequest r = request("i=1; while [ $i -le 30 ]; do echo \"problem line $i\" >&2; i=$((i+1)); done\nexit 3\n");
  std::string msg = error_of(r);
  EXPECT_NE(msg.find("fake_peer.sh"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'model dir/m.gguf'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("exited with status 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("problem line 30"), std::string::npos) << msg;
  EXPECT_NE(msg.find("problem line 11"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("problem line 10\n"), std::string::npos) << msg;
}

TEST_F(PeerRunner, ACrashIsNamedWithItsSignalAndTheRebuildHint) {
  std::string msg = error_of(request("echo 'about to crash' >&2\nkill -SEGV $$\n"));
  EXPECT_NE(msg.find("killed by signal 11"), std::string::npos) << msg;
  EXPECT_NE(msg.find("about to crash"), std::string::npos) << msg;
  EXPECT_NE(msg.find("peer_venv.sh --make"), std::string::npos) << msg;
}

TEST_F(PeerRunner, OutputThatIsNotJsonIsAnErrorQuotingIt) {
  std::string msg = error_of(request("echo 'Loading model... done'\necho 'warning: x' >&2\n"));
  EXPECT_NE(msg.find("fake_peer.sh"), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not parse"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Loading model... done"), std::string::npos) << msg;
  EXPECT_NE(msg.find("warning: x"), std::string::npos) << msg;
}

TEST_F(PeerRunner, AMissingOrMistypedFigureIsNamed) {
  nlohmann::json j = sample_figures(true);
  j.erase("tg_tok_s");
  std::string msg = error_of(request("cat '" + write("a.json", j.dump()) + "'\n"));
  EXPECT_NE(msg.find("'tg_tok_s' is missing"), std::string::npos) << msg;

  j = sample_figures(true);
  j["llama_zip"]["round_trip_exact"] = "yes";
  msg = error_of(request("cat '" + write("b.json", j.dump()) + "'\n"));
  EXPECT_NE(msg.find("llama_zip: field 'round_trip_exact' has the wrong type"), std::string::npos) << msg;

  j = sample_figures(false);
  j.erase("llama_zip");
  msg = error_of(request("cat '" + write("c.json", j.dump()) + "'\n"));
  EXPECT_NE(msg.find("'llama_zip' is missing"), std::string::npos) << msg;
}

TEST_F(PeerRunner, ALotOfOutputOnBothPipesDoesNotStallTheChild) {
  // 1 MiB of stderr before the JSON: more than a pipe holds, so reading stdout alone would hang.
  nlohmann::json j = sample_figures(false);
  j["system_info"] = std::string(300000, 'x');  // and a stdout larger than a pipe too
  std::string json = write("out.json", j.dump());
  PeerFigures f = run_peer_llamacpp(
      request("head -c 1048576 /dev/zero | tr '\\0' 'e' >&2\ncat '" + json + "'\nhead -c 100000 /dev/zero >&2\n"));
  EXPECT_EQ(f.system_info.size(), 300000u);
}

TEST_F(PeerRunner, AnInterpreterThatCannotStartIsNamed) {
  PeerRequest r = request("exit 0\n");
  r.python = (dir_ / "no-such-python").string();
  std::string msg = error_of(r);
  EXPECT_NE(msg.find("cannot start"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no-such-python"), std::string::npos) << msg;

  r.python = "lorazip-no-such-program-in-path";
  msg = error_of(r);
  EXPECT_NE(msg.find("lorazip-no-such-program-in-path: not found in PATH"), std::string::npos) << msg;
}

TEST_F(PeerRunner, AnIncompleteRequestIsTheCallersMistake) {
  PeerRequest r = request("exit 0\n");
  r.threads = 0;
  EXPECT_THROW(run_peer_llamacpp(r), std::invalid_argument);
  r = request("exit 0\n");
  r.files.clear();
  EXPECT_THROW(run_peer_llamacpp(r), std::invalid_argument);
  r = request("exit 0\n");
  r.repeat = 0;
  EXPECT_THROW(run_peer_llamacpp(r), std::invalid_argument);
  r = request("exit 0\n");
  r.python.clear();
  EXPECT_THROW(run_peer_llamacpp(r), std::invalid_argument);
}

TEST(PeerTable, ShowsEachRunWithLlamaZipsBitsPerByteOrNotRun) {
  PeerFigures with = parse_peer_figures(sample_figures(true).dump());
  PeerFigures without = parse_peer_figures(sample_figures(false).dump());
  without.threads = 1;
  std::string table = format_peer_table({without, with});
  std::istringstream lines(table);
  std::string header, row1, row2;
  std::getline(lines, header);
  std::getline(lines, row1);
  std::getline(lines, row2);
  EXPECT_NE(header.find("tg tok/s"), std::string::npos) << table;
  EXPECT_EQ(row1.rfind("1 ", 0), 0u) << table;
  EXPECT_NE(row1.find("(not run)"), std::string::npos) << table;
  EXPECT_EQ(row2.rfind("2 ", 0), 0u) << table;
  EXPECT_NE(row2.find("200.0"), std::string::npos) << table;  // pp tok/s
  EXPECT_NE(row2.find("1.000"), std::string::npos) << table;  // 375 bytes * 8 / 3000 bytes
  EXPECT_NE(row2.find("yes"), std::string::npos) << table;
  EXPECT_NE(row2.find("0.5-1.5"), std::string::npos) << table;  // load average, start-end
}

TEST(PeerDocumentsTest, HoldsEachTextByteForByteUntilDestroyed) {
  std::vector<std::string> texts = {"first document\n", std::string("bytes \0\xff kept", 14), ""};
  std::string dir;
  {
    PeerDocuments docs(texts);
    ASSERT_EQ(docs.paths().size(), texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      std::ifstream in(docs.paths()[i], std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      EXPECT_EQ(ss.str(), texts[i]) << docs.paths()[i];
    }
    dir = fs::path(docs.paths()[0]).parent_path().string();
    EXPECT_TRUE(fs::is_directory(dir));
  }
  EXPECT_FALSE(fs::exists(dir)) << dir;
}

TEST(PeerScript, TheDefaultScriptIsInTheSourceTree) {
  EXPECT_TRUE(fs::is_regular_file(default_peer_script())) << default_peer_script();
}

}  // namespace
