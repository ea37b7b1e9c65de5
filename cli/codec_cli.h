// The coding subcommands' command line (compress, decompress, test, info, archive) and the global
// options, registered on a CLI11 app. Torch-free: the program's front end (cli/main.cpp) runs them
// without loading libtorch; the full command line (cli/full_main.cpp) registers the same ones.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace CLI {
class App;
}

namespace lorazip {

struct CodecCommands {
  CLI::App *compress = nullptr, *decompress = nullptr, *test = nullptr, *info = nullptr, *archive = nullptr;
  CodecCliOptions codec;
  CodecCliOptions test_options;
  ArchiveCliOptions archive_options;
  std::vector<std::string> info_files;
};

// -t/--threads and -q/--quiet (every subcommand's).
void add_global_options(CLI::App& app, GlobalOptions& g);
void add_codec_commands(CLI::App& app, CodecCommands& c);
// Runs the parsed coding subcommand; -1 when none of them was given.
int run_codec_command(const CodecCommands& c, const GlobalOptions& g);

// Runs `body` and turns what it throws into the program's exit: "lorazip: MESSAGE" on stderr, 2
// for a usage error (std::invalid_argument), 1 for any other failure.
int exit_code_of(const std::function<int()>& body);

// The coding subcommands' names, for the front end's dispatch.
// Whether `name` runs in the torch-free front end (cli/subcommands.h: the coding subcommands and
// generate, qa, rewrite, frontier).
bool is_codec_command(const std::string& name);

}  // namespace lorazip
