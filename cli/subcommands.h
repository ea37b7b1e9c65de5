// The program's subcommands, in the order help and messages list them: the one table the front
// end's dispatch, the usage messages, the registration check and the help test read.
#pragma once
#include <cstddef>
#include <string>

namespace lorazip {

struct SubcommandInfo {
  const char* name;
  bool coding;  // runs in the torch-free front end (cli/main.cpp); the others in liblorazip_full.so
};

inline constexpr SubcommandInfo kSubcommands[] = {
    {"prepare", false},  {"pretrain", false}, {"train", false},   {"eval", false},     {"compress", true},  {"decompress", true},
    {"test", true},      {"archive", true},   {"info", true},     {"export", false},   {"run", false},      {"cluster", false},
    {"generate", false}, {"qa", false},       {"rewrite", false}, {"frontier", false},
};

// "prepare, pretrain, ..., frontier": every subcommand (coding_only: the front end's).
inline std::string subcommand_list(bool coding_only = false) {
  std::string out;
  for (const SubcommandInfo& s : kSubcommands)
    if (!coding_only || s.coding) out += (out.empty() ? "" : ", ") + std::string(s.name);
  return out;
}

inline bool is_subcommand(const std::string& name, bool coding_only = false) {
  for (const SubcommandInfo& s : kSubcommands)
    if (name == s.name && (!coding_only || s.coding)) return true;
  return false;
}

}  // namespace lorazip
