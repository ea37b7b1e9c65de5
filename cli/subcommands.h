// The program's subcommands, in the order help and messages list them: the one table the front
// end's dispatch, the usage messages, the registration check and the help test read.
#pragma once
#include <cstddef>
#include <string>

namespace lorazip {

struct SubcommandInfo {
  const char* name;
  // Runs on the coding engine in the torch-free front end (cli/main.cpp, and the coding-only build);
  // the others (training, evaluation, clustering) in liblorazip_full.so, with libtorch.
  bool front_end;
};

inline constexpr SubcommandInfo kSubcommands[] = {
    {"prepare", false}, {"pretrain", false}, {"train", false},  {"eval", false},      {"compress", true},  {"decompress", true},
    {"test", true},     {"archive", true},   {"info", true},    {"export", true},    {"run", false},      {"cluster", false},
    {"generate", true}, {"qa", true},        {"rewrite", true}, {"frontier", true},
};

// "prepare, pretrain, ..., frontier": every subcommand (front_end_only: the front end's).
inline std::string subcommand_list(bool front_end_only = false) {
  std::string out;
  for (const SubcommandInfo& s : kSubcommands)
    if (!front_end_only || s.front_end) out += (out.empty() ? "" : ", ") + std::string(s.name);
  return out;
}

inline bool is_subcommand(const std::string& name, bool front_end_only = false) {
  for (const SubcommandInfo& s : kSubcommands)
    if (name == s.name && (!front_end_only || s.front_end)) return true;
  return false;
}

}  // namespace lorazip
