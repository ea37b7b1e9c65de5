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
  bool quiet = false;           // -q: no progress meter, no log lines (errors still print)
  bool progress = false;        // draw the coding progress meter: stderr is a terminal and no -q (common/progress.h)
  std::string device = "cpu";   // --device: cpu, or cuda on a CUDA build (train/train.h resolve_training_device)
  bool device_given = false;    // --device was on the command line (it wins over a config's device:)
  double dist_timeout_s = 300;  // data-parallel runs: seconds a rank waits for the others (train/distributed.h)
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
  bool verify = false;              // compress --verify: decode before reporting success (always with --rm)
  std::string format = "compact";   // compress --format: compact (version 3) or full (version 2)
  int64_t group_streams = 32;
  int64_t chunk_tokens = 0;
  int64_t context_tokens = kDefaultContextTokens;  // W: tokens a chunk after the first reads first; 0 = independent chunks; -1 = chunk/4
  std::string router;       // --router: router.json of `lorazip cluster`; the adapter (under -A) comes from the prompt
  std::string prompt_file;  // --prompt-file: the prompt that routes (one input only)
  std::string context_file;            // --context-file: code / decode given this prompt (gen/context.h)
  std::string template_name = "auto";  // --template: how the prompt is rendered (auto, chatml, plain)
};

int cmd_compress(const CodecCliOptions& o, const GlobalOptions& g);
int cmd_decompress(const CodecCliOptions& o, const GlobalOptions& g);
int cmd_info(const std::vector<std::string>& files);
// `lorazip test FILE...`: decodes each file and checks its checksum, writes nothing; 1 when any fails.
int cmd_test(const CodecCliOptions& o, const GlobalOptions& g);

// `lorazip archive ACTION ARCHIVE [INPUTS...]` (cli/cmd_archive.cpp).
struct ArchiveCliOptions {
  std::string action;               // create, add, list, extract, test
  std::string archive;
  std::vector<std::string> inputs;  // create/add: paths; extract/test: member names
  std::string model_dir, adapter_dir, adapters_dir;
  bool jsonl = false;
  std::string directory = ".";      // extract -C
  bool to_stdout = false;           // extract -c
  std::string output;               // extract -o
  bool force = false;
  bool verbose = false;
  int64_t chunk_tokens = 0;
  int64_t context_tokens = kDefaultContextTokens;
  bool conversations = false;           // create: code each record's turns given the turns before them
  std::string template_name = "auto";   // create --conversations: auto, chatml or plain
};
int cmd_archive(const ArchiveCliOptions& o, const GlobalOptions& g);

// generate, qa encode|decode|eval, rewrite (cli/cmd_lossy.cpp): added to `app`; run_lossy_command
// returns -1 when none of them was selected.
struct LossyCommands;
LossyCommands* add_lossy_commands(CLI::App& app);
int run_lossy_command(LossyCommands* c, const GlobalOptions& g);
// frontier (cli/cmd_frontier.cpp): the compression–compute chart; run_frontier_command returns -1
// when it was not selected.
struct FrontierCommand;
FrontierCommand* add_frontier_command(CLI::App& app);
int run_frontier_command(FrontierCommand* c, const GlobalOptions& g);
// export (cli/cmd_export.cpp): run_export_command returns -1 when it was not selected.
struct ExportCommand;
ExportCommand* add_export_command(CLI::App& app);
int run_export_command(ExportCommand* c, const GlobalOptions& g);

}  // namespace lorazip
