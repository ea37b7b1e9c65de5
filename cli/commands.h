// The lorazip subcommands. main.cpp parses arguments (CLI11) into these structs and calls one
// function; each returns the process exit code and throws on errors (main prints them).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "codec/lm_codec.h"  // kDefaultContextTokens

namespace CLI {
class App;
}

namespace lorazip {

struct GlobalOptions {
  int threads = 0;             // in force (main() resolves 0 to all cores)
  bool threads_given = false;  // --threads was on the command line (it wins over a config's threads)
  bool quiet = false;
};

struct CodecCliOptions {
  std::vector<std::string> inputs;  // empty or "-" = stdin
  std::string model_dir;            // -m
  std::string adapter_dir;          // -a
  std::string adapters_dir;         // -A
  std::string output;               // -o
  std::string suffix = ".lz";
  bool to_stdout = false;           // -c
  bool force = false;               // -f
  bool remove_input = false;        // --rm
  bool verbose = false;             // -v
  int64_t group_streams = 32;
  int64_t chunk_tokens = 0;
  int64_t context_tokens = kDefaultContextTokens;  // W: tokens a chunk after the first reads first; 0 = independent chunks; -1 = chunk/4
};

int cmd_compress(const CodecCliOptions& o, const GlobalOptions& g);
int cmd_decompress(const CodecCliOptions& o, const GlobalOptions& g);
int cmd_info(const std::vector<std::string>& files);

struct PipelineOptions {
  std::string config = "configs/default.yaml";
  std::string work_dir;        // overrides the config's work_dir when set
  std::string domain;          // train
  bool resume = false;
  bool force = false;          // run: ignore the stage cache
  // prepare without a config: domain=path inputs
  std::vector<std::string> inputs;
  std::string tokenizer;       // existing tokenizer.model
  int vocab_size = 0;
  // eval
  std::string base_dir;        // eval/export: base model directory (default: the work dir's base)
  std::string adapters_dir;
  std::vector<std::string> extra;  // eval: extra corpora name=path
  int64_t sample_docs = -1;
  // export
  std::string adapter_dir;
  std::string out_dir;
  bool merged = false;
};

// A config's `threads` applies when --threads was not given; returns the options in force.
struct JobConfig;
GlobalOptions apply_config_threads(const JobConfig& j, const GlobalOptions& g);

int cmd_prepare(const PipelineOptions& o, const GlobalOptions& g);
int cmd_pretrain(const PipelineOptions& o, const GlobalOptions& g);
int cmd_train(const PipelineOptions& o, const GlobalOptions& g);
int cmd_eval(const PipelineOptions& o, const GlobalOptions& g);
int cmd_export(const PipelineOptions& o, const GlobalOptions& g);
int cmd_run(const PipelineOptions& o, const GlobalOptions& g);

// generate, qa encode|decode|eval, rewrite (cli/cmd_lossy.cpp): added to `app`; run_lossy_command
// returns -1 when none of them was selected.
struct LossyCommands;
LossyCommands* add_lossy_commands(CLI::App& app);
int run_lossy_command(LossyCommands* c, const GlobalOptions& g);

}  // namespace lorazip
