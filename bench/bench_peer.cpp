// lorazip's peers alone: llama.cpp (prompt processing, token generation) and llama-zip on one GGUF
// and a few documents, at each thread count, through bench/peer.h. Prints each run's JSON line,
// then a table. Exit 77 when no peer venv can be had (scripts/peer_venv.sh --make makes one).
//
//   bench_peer [--python PY] [--threads 1,2] [--repeat R] [--llama-zip DIR] GGUF FILE...
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "bench/peer.h"

using namespace lorazip;

namespace {

int usage(const char* why) {
  std::fprintf(stderr,
               "bench_peer: %s\n"
               "usage: bench_peer [--python PY] [--threads 1,2] [--repeat R] [--llama-zip DIR] GGUF FILE...\n"
               "  --python PY      the venv's interpreter (default: what scripts/peer_venv.sh prints)\n"
               "  --threads LIST   comma-separated thread counts, one run each (default 1,2)\n"
               "  --repeat R       pp and tg: the best of R passes over the documents (default 1)\n"
               "  --llama-zip DIR  also run llama-zip from DIR (holding llama_zip.py)\n",
               why);
  return 2;
}

std::vector<int> parse_counts(const std::string& list) {
  std::vector<int> out;
  size_t begin = 0;
  while (begin <= list.size()) {
    size_t comma = list.find(',', begin);
    std::string item = list.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
    size_t used = 0;
    int n = 0;
    try {
      n = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || n < 1) return {};
    out.push_back(n);
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  PeerRequest request;
  std::vector<int> threads = {1, 2};
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool has_value = i + 1 < argc;
    if (a == "--python" && has_value) request.python = argv[++i];
    else if (a == "--llama-zip" && has_value) request.llama_zip_dir = argv[++i];
    else if (a == "--repeat" && has_value) {
      std::vector<int> r = parse_counts(argv[++i]);
      if (r.size() != 1) return usage("--repeat takes one count >= 1");
      request.repeat = r[0];
    } else if (a == "--threads" && has_value) {
      threads = parse_counts(argv[++i]);
      if (threads.empty()) return usage("--threads takes a comma-separated list of counts >= 1");
    } else if (a == "-h" || a == "--help") return usage("measures llama.cpp and llama-zip beside lorazip");
    else if (a.rfind("--", 0) == 0) return usage(("unknown option or missing value: " + a).c_str());
    else positional.push_back(a);
  }
  if (positional.size() < 2) return usage("needs a GGUF and at least one document");
  request.gguf = positional[0];
  request.files.assign(positional.begin() + 1, positional.end());

  try {
    if (request.python.empty()) {
      std::string why;
      auto python = find_peer_python(&why);
      if (!python) {
        std::fprintf(stderr, "bench_peer: skipped: %s\n", why.c_str());
        return 77;
      }
      request.python = *python;
    }
    std::printf("peer: %s %s; %zu documents; model %s\n", request.python.c_str(), request.script.c_str(),
                request.files.size(), request.gguf.c_str());
    std::vector<PeerFigures> runs;
    for (int t : threads) {
      request.threads = t;
      runs.push_back(run_peer_llamacpp(request));
      std::printf("%s\n", runs.back().json.c_str());
      std::fflush(stdout);
    }
    std::printf("\n%s", format_peer_table(runs).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_peer: %s\n", e.what());
    return 1;
  }
  return 0;
}
