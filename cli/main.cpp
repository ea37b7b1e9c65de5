// lorazip: LLM-based lossless compression with per-domain LoRA adapters.
// The program's front end: the subcommands that run on the coding engine (compress, decompress,
// test, info, archive, export, generate, qa, rewrite, frontier; cli/subcommands.h) run here, without
// libtorch, so a file starts coding a few milliseconds after the command; every other subcommand
// (and --help without one) runs in liblorazip_full.so, the full command line with training,
// evaluation and clustering, opened beside this program (the coding-only build has none). Exit codes: 1 = error in the input
// or the environment, 2 = bad usage.
#include <CLI/CLI.hpp>
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/codec_cli.h"
#include "cli/commands.h"
#include "cli/subcommands.h"
#include "codec/engine/pool.h"
#include "common/log.h"
#include "common/progress.h"

#ifndef LORAZIP_FULL_BUILD_PATH
#define LORAZIP_FULL_BUILD_PATH ""
#endif

using namespace lorazip;

namespace {

// The subcommand word: the first argument that is neither an option nor the value of a global
// option that takes one.
std::string subcommand_of(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-t" || a == "--threads" || a == "--dist-timeout" || a == "--device") {
      ++i;
      continue;
    }
    if (!a.empty() && a[0] == '-') continue;
    return a;
  }
  return "";
}

#ifdef LORAZIP_CODING_ONLY
// The coding-only build has no liblorazip_full.so to open.
int run_full(int argc, char** argv) {
  const std::string sub = subcommand_of(argc, argv);
  if (sub.empty())
    std::fprintf(stderr, "lorazip (coding-only build): name a subcommand: %s (lorazip SUBCOMMAND --help)\n", subcommand_list(/*front_end_only=*/true).c_str());
  else if (is_subcommand(sub))
    std::fprintf(stderr, "lorazip: '%s' is not in this build: it was built without libtorch (-DLORAZIP_WITH_TORCH=OFF), which "
                         "has the subcommands %s; build with libtorch for the others\n",
                 sub.c_str(), subcommand_list(/*front_end_only=*/true).c_str());
  else
    std::fprintf(stderr, "lorazip: unknown subcommand '%s' (this coding-only build has %s)\n", sub.c_str(), subcommand_list(/*front_end_only=*/true).c_str());
  return 2;
}
#else
std::string self_dir() {
  std::vector<char> buf(4096);
  const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return "";
  std::string p(buf.data(), static_cast<size_t>(n));
  return p.substr(0, p.find_last_of('/'));
}

// liblorazip_full.so: $LORAZIP_FULL_LIB when set, else beside this program, else where the build
// put it.
int run_full(int argc, char** argv) {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("LORAZIP_FULL_LIB"); env && *env) {
    candidates.push_back(env);
  } else {
    const std::string dir = self_dir();
    if (!dir.empty()) candidates.push_back(dir + "/liblorazip_full.so");
    if (*LORAZIP_FULL_BUILD_PATH) candidates.push_back(LORAZIP_FULL_BUILD_PATH);
  }
  std::string errors;
  for (const std::string& path : candidates) {
    void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = ::dlerror();
      errors += "\n  " + path + ": " + (e ? e : "cannot be opened");
      continue;
    }
    using Main = int (*)(int, char**);
    auto fn = reinterpret_cast<Main>(::dlsym(h, "lorazip_full_main"));
    if (!fn) {
      errors += "\n  " + path + ": has no lorazip_full_main";
      continue;
    }
    return fn(argc, argv);
  }
  std::fprintf(stderr,
               "lorazip: '%s' needs liblorazip_full.so (training, evaluation and clustering, with libtorch), which could not be "
               "loaded:%s\n(the subcommands %s work without it)\n",
               subcommand_of(argc, argv).c_str(), errors.c_str(), subcommand_list(/*front_end_only=*/true).c_str());
  return 1;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  if (!is_codec_command(subcommand_of(argc, argv))) return run_full(argc, argv);
  CLI::App app{"lorazip: lossless compression of LLM-written text by arithmetic coding under a language model,\n"
               "with one LoRA adapter per domain (the coding subcommands; lorazip --help lists all)."};
  app.require_subcommand(1, 1);
  app.fallthrough();  // global options also after the subcommand: `lorazip compress -t 2 FILE`
  GlobalOptions g;
  add_global_options(app, g);
  // Training's options, accepted here so that their misuse with a coding subcommand is named.
  app.add_option("--device", g.device, "training only: coding always runs on the CPU");
  app.add_option("--dist-timeout", g.dist_timeout_s, "training only");
  CodecCommands codec;
  add_codec_commands(app, codec);
  LossyCommands* lossy = add_lossy_commands(app);
  FrontierCommand* frontier = add_frontier_command(app);
  ExportCommand* exp = add_export_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  set_quiet(g.quiet);
  g.progress = progress_enabled(stderr, g.quiet);
  return exit_code_of([&] {
    g.threads_given = app.get_option("--threads")->count() > 0;
    if (g.device != "cpu")
      throw std::invalid_argument("--device " + g.device + ": only pretrain, train, eval and run compute on a device; coding "
                                  "(compress, decompress, ...) always runs on the CPU, so that files decode the same everywhere");
    if (g.threads < 0) throw std::invalid_argument("--threads must be >= 0 (0 = all cores), got " + std::to_string(g.threads));
    engine::set_threads(g.threads);
    g.threads = engine::threads();
    if (int rc = run_codec_command(codec, g); rc >= 0) return rc;
    if (int rc = run_lossy_command(lossy, g); rc >= 0) return rc;
    if (int rc = run_frontier_command(frontier, g); rc >= 0) return rc;
    if (int rc = run_export_command(exp, g); rc >= 0) return rc;
    return 0;
  });
}
