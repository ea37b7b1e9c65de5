// Data-parallel training on c10d/Gloo (train/distributed.h): two processes on localhost with
// per-rank batch B/2 train what one process with batch B trains (LoRA and pretraining), launched
// by setting RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT directly and by `torchrun --no-python`;
// a killed or hung rank ends the job with an error naming it; --resume with the same world size
// finishes to the uninterrupted adapter and another world size is refused. Each rank is a fresh
// tests/tools/ddp_worker process.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/fs.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"

using namespace lorazip;
namespace fs = std::filesystem;

extern char** environ;

namespace {

const std::string kWorker = LORAZIP_DDP_WORKER;
constexpr double kLoraLr = 1e-2, kPretrainLr = 5e-3;  // the peak learning rates in tools/ddp_worker.cpp

std::string temp_dir(const std::string& name) {
  std::string d = (fs::temp_directory_path() / ("lorazip_test_ddp_" + name + "_" + std::to_string(::getpid()))).string();
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A TCP port that was free a moment ago (the kernel's choice for port 0).
int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

// Starts argv with this process's environment minus the launcher's variables, plus `extra`;
// stdout and stderr go to `log`.
pid_t spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& extra, const std::string& log) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    const std::string key = kv.substr(0, kv.find('='));
    if (key == "RANK" || key == "WORLD_SIZE" || key == "LOCAL_RANK" || key == "MASTER_ADDR" || key == "MASTER_PORT" ||
        key == "TORCHELASTIC_USE_AGENT_STORE" || extra.count(key))
      continue;
    env.push_back(kv);
  }
  for (const auto& [k, v] : extra) env.push_back(k + "=" + v);
  pid_t pid = ::fork();
  if (pid == 0) {
    FILE* f = std::fopen(log.c_str(), "w");
    if (f) {
      ::dup2(fileno(f), 1);
      ::dup2(fileno(f), 2);
    }
    std::vector<char*> a, e;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    for (auto& s : env) e.push_back(s.data());
    e.push_back(nullptr);
    ::execvpe(a[0], a.data(), e.data());
    std::perror("execvpe");
    ::_exit(127);
  }
  return pid;
}

int exit_code(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1000;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? -WTERMSIG(status) : -999;
}

std::vector<std::string> worker_args(const std::string& mode, const std::string& out, const std::string& run,
                                     const std::vector<std::string>& more = {}) {
  std::vector<std::string> a = {kWorker, mode, out, run};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

// Runs `world` ranks with the variables set directly; returns their exit codes. Logs: dir/rank<r>.log.
std::vector<int> run_ranks(int world, const std::string& mode, const std::string& out, const std::string& run,
                           const std::vector<std::string>& more, const std::string& log_dir) {
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    std::map<std::string, std::string> env;
    if (world > 1)
      env = {{"RANK", std::to_string(r)},
             {"WORLD_SIZE", std::to_string(world)},
             {"LOCAL_RANK", std::to_string(r)},
             {"MASTER_ADDR", "127.0.0.1"},
             {"MASTER_PORT", std::to_string(port)}};
    pids.push_back(spawn(worker_args(mode, out, run, more), env, log_dir + "/rank" + std::to_string(r) + ".log"));
  }
  std::vector<int> codes;
  for (pid_t p : pids) codes.push_back(exit_code(p));
  return codes;
}

std::map<std::string, torch::Tensor> read_tensors(const std::string& path) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [k, raw] : read_safetensors(path).tensors) out.emplace(k, from_raw(raw, k));
  return out;
}

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

// The data-parallel gradient is the sum of the ranks' partial gradients, the one-process gradient
// one matmul over the whole batch: the same real number, summed in another float32 order (the
// step's loss and gradient norm agree to ~1e-7 relative). AdamW divides each gradient element by
// its running RMS, so for an element whose gradient is tiny that relative noise becomes a visible
// part of its update, whose size is the learning rate: the tensors are compared to 2% of the peak
// learning rate (measured: 0.26% for LoRA, 0.16% for pretraining after 8 and 6 steps). Data split
// wrongly or gradients not summed change whole updates, by about the learning rate per step.
void expect_close_tensors(const std::string& a_path, const std::string& b_path, double lr) {
  auto a = read_tensors(a_path), b = read_tensors(b_path);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, ta] : a) {
    ASSERT_TRUE(b.count(k)) << k;
    const torch::Tensor& tb = b.at(k);
    ASSERT_EQ(ta.sizes(), tb.sizes()) << k;
    const double diff = (ta - tb).abs().max().item<double>();
    EXPECT_LE(diff, 0.02 * lr) << k << ": max |diff| " << diff << " (learning rate " << lr << ")";
  }
}

// Per-step training and validation bits/token: 1e-5 relative (float32 sums in another order).
void expect_close_metrics(const std::string& a_path, const std::string& b_path) {
  auto a = read_metrics(a_path), b = read_metrics(b_path);
  ASSERT_EQ(a.size(), b.size()) << "rank 0 alone writes one line per step";
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["step"], b[i]["step"]);
    for (const char* key : {"train_bits_per_token", "val_bits_per_token"}) {
      ASSERT_EQ(a[i].contains(key), b[i].contains(key)) << key << " line " << i;
      if (!a[i].contains(key) || a[i][key].is_null()) continue;
      const double x = a[i][key].get<double>(), y = b[i][key].get<double>();
      EXPECT_NEAR(x, y, 1e-5 * std::abs(x)) << key << " at step " << a[i]["step"];
    }
  }
}

std::string torchrun_path() {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "");
  std::string dir;
  while (std::getline(ss, dir, ':'))
    if (!dir.empty() && ::access((dir + "/torchrun").c_str(), X_OK) == 0) return dir + "/torchrun";
  return "";
}

}  // namespace

TEST(DdpLora, TwoProcessesTrainTheOneProcessAdapter) {
  const std::string root = temp_dir("lora");
  ASSERT_EQ(run_ranks(1, "lora", root + "/one", root + "/run_one", {"--batch", "4"}, root), std::vector<int>{0})
      << read_file(root + "/rank0.log");
  fs::create_directories(root + "/two_logs");
  auto codes = run_ranks(2, "lora", root + "/two", root + "/run_two", {"--batch", "4"}, root + "/two_logs");
  ASSERT_EQ(codes, (std::vector<int>{0, 0})) << read_file(root + "/two_logs/rank0.log") << read_file(root + "/two_logs/rank1.log");
  expect_close_tensors(root + "/one/adapter_model.safetensors", root + "/two/adapter_model.safetensors", kLoraLr);
  expect_close_metrics(root + "/run_one/metrics.jsonl", root + "/run_two/metrics.jsonl");
  // The two-process lines say so and carry the communication time.
  auto m = read_metrics(root + "/run_two/metrics.jsonl");
  EXPECT_EQ(m.back()["world_size"], 2);
  EXPECT_TRUE(m.back()["comm_s"].is_number());
  fs::remove_all(root);
}

TEST(DdpLora, TorchrunLaunchesTheSameTraining) {
  const std::string torchrun = torchrun_path();
  if (torchrun.empty()) GTEST_SKIP() << "torchrun is not on PATH (Debian package python3-torch)";
  const std::string root = temp_dir("torchrun");
  ASSERT_EQ(run_ranks(1, "lora", root + "/one", root + "/run_one", {}, root), std::vector<int>{0}) << read_file(root + "/rank0.log");
  // torchrun's default static rendezvous: its agent serves the store at the master port, so every
  // rank is a store client (the direct launches above cover rank 0 serving it, as with
  // --standalone). Debian's torchrun 1.13 under Python 3.11 fails to parse its default
  // --redirects/--tee value 0 ("'NoneType' object has no attribute 'get'"), hence 1; the agent
  // checks its workers every --monitor_interval seconds.
  const std::string log = root + "/torchrun.log";
  std::vector<std::string> argv = {torchrun, "--nnodes=1", "--nproc_per_node=2", "--master_addr=127.0.0.1",
                                   "--master_port=" + std::to_string(free_port()), "--monitor_interval=1", "--redirects=1",
                                   "--tee=1", "--log_dir=" + root + "/torchrun_logs", "--no_python"};
  for (const auto& a : worker_args("lora", root + "/tr", root + "/run_tr")) argv.push_back(a);
  ASSERT_EQ(exit_code(spawn(argv, {}, log)), 0) << read_file(log);
  expect_close_tensors(root + "/one/adapter_model.safetensors", root + "/tr/adapter_model.safetensors", kLoraLr);
  expect_close_metrics(root + "/run_one/metrics.jsonl", root + "/run_tr/metrics.jsonl");
  fs::remove_all(root);
}

TEST(DdpPretrain, TwoProcessesTrainTheOneProcessModel) {
  const std::string root = temp_dir("pretrain");
  ASSERT_EQ(run_ranks(1, "pretrain", root + "/one", root + "/run_one", {"--steps", "6"}, root), std::vector<int>{0})
      << read_file(root + "/rank0.log");
  fs::create_directories(root + "/two_logs");
  auto codes = run_ranks(2, "pretrain", root + "/two", root + "/run_two", {"--steps", "6"}, root + "/two_logs");
  ASSERT_EQ(codes, (std::vector<int>{0, 0})) << read_file(root + "/two_logs/rank0.log") << read_file(root + "/two_logs/rank1.log");
  expect_close_tensors(root + "/one/model.safetensors", root + "/two/model.safetensors", kPretrainLr);
  expect_close_metrics(root + "/run_one/metrics.jsonl", root + "/run_two/metrics.jsonl");
  fs::remove_all(root);
}

TEST(DdpLora, BatchNotDivisibleByTheWorldSizeIsRefused) {
  const std::string root = temp_dir("indivisible");
  auto codes = run_ranks(2, "lora", root + "/two", root + "/run_two", {"--batch", "3"}, root);
  EXPECT_EQ(codes, (std::vector<int>{2, 2}));
  EXPECT_NE(read_file(root + "/rank0.log").find("batch_size 3 is not a multiple of the 2 data-parallel processes"), std::string::npos)
      << read_file(root + "/rank0.log");
  fs::remove_all(root);
}

TEST(DdpFaults, KilledRankEndsTheJobAndResumeFinishesToTheSameAdapter) {
  const std::string root = temp_dir("killed");
  for (const char* d : {"whole_logs", "kill_logs", "one_logs", "resume_logs"}) fs::create_directories(root + "/" + d);
  ASSERT_EQ(run_ranks(2, "lora", root + "/whole", root + "/run_whole", {}, root + "/whole_logs"), (std::vector<int>{0, 0}))
      << read_file(root + "/whole_logs/rank0.log");

  // Rank 1 is killed (SIGKILL) after step 5; the last checkpoint is step 4's.
  auto codes = run_ranks(2, "lora", root + "/out", root + "/run", {"--die", "1:5"}, root + "/kill_logs");
  EXPECT_EQ(codes[1], -SIGKILL);
  EXPECT_EQ(codes[0], 1);
  const std::string log0 = read_file(root + "/kill_logs/rank0.log");
  EXPECT_NE(log0.find("rank 1 (last seen at step 5) dropped out"), std::string::npos) << log0;
  EXPECT_FALSE(fs::exists(root + "/out"));

  // Another world size is refused by name.
  ASSERT_EQ(run_ranks(1, "lora", root + "/out", root + "/run", {"--resume"}, root + "/one_logs"), std::vector<int>{1});
  const std::string log1 = read_file(root + "/one_logs/rank0.log");
  EXPECT_NE(log1.find("written by a run on 2 data-parallel process(es) (WORLD_SIZE), this run has 1"), std::string::npos) << log1;

  // The same world size resumes from step 4 to the uninterrupted run's adapter, byte for byte
  // (two ranks sum in one fixed order, so a resumed run repeats the bits of an uninterrupted one).
  ASSERT_EQ(run_ranks(2, "lora", root + "/out", root + "/run", {"--resume"}, root + "/resume_logs"), (std::vector<int>{0, 0}))
      << read_file(root + "/resume_logs/rank0.log") << read_file(root + "/resume_logs/rank1.log");
  EXPECT_EQ(read_file(root + "/whole/adapter_model.safetensors"), read_file(root + "/out/adapter_model.safetensors"));
  auto a = read_metrics(root + "/run_whole/metrics.jsonl"), b = read_metrics(root + "/run/metrics.jsonl");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i]["train_bits_per_token"], b[i]["train_bits_per_token"]) << i;
  fs::remove_all(root);
}

TEST(DdpFaults, HungRankEndsTheJobWithinTheTimeout) {
  const std::string root = temp_dir("hung");
  // Rank 1 stops itself (SIGSTOP) after step 3; rank 0 waits at most the 3 s timeout.
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r)
    pids.push_back(spawn(worker_args("lora", root + "/out", root + "/run", {"--hang", "1:3", "--timeout", "3"}),
                         {{"RANK", std::to_string(r)},
                          {"WORLD_SIZE", "2"},
                          {"MASTER_ADDR", "127.0.0.1"},
                          {"MASTER_PORT", std::to_string(port)}},
                         root + "/rank" + std::to_string(r) + ".log"));
  EXPECT_EQ(exit_code(pids[0]), 1);
  ::kill(pids[1], SIGKILL);
  exit_code(pids[1]);
  const std::string log0 = read_file(root + "/rank0.log");
  EXPECT_NE(log0.find("rank 1 (last seen at step 3) did not arrive within the timeout of 3 s"), std::string::npos) << log0;
  // The last checkpoint (step 2) is intact.
  EXPECT_TRUE(fs::exists(root + "/run/checkpoint.pt"));
  fs::remove_all(root);
}
