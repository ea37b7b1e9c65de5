// lorazip's full command line, in the shared library liblorazip_full.so that the program's front
// end (cli/main.cpp) opens for every subcommand but the coding ones: it parses the command line
// (CLI11), sets the thread count, runs one subcommand and turns errors into exit codes: 1 = error
// in the input or the environment, 2 = bad usage.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <thread>

#include "cli/subcommands.h"
#include "cli/codec_cli.h"
#include "cli/commands.h"
#include "cli/pipeline_commands.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/progress.h"
#include "model/llama.h"
#include "train/distributed.h"
#include "train/train.h"

using namespace lorazip;

namespace {

// Debian's OpenBLAS (0.3.21) does not recognise recent Xeon models (Sapphire Rapids) and falls
// back to its SSE3 "Prescott" kernels, 2-3x slower than the AVX-512 ones the CPU can run. The
// kernel is chosen when the library loads, so when the user has not set OPENBLAS_CORETYPE
// (LORAZIP_KEEP_BLAS=1 keeps OpenBLAS's own choice) lorazip names the kernel family the CPU
// supports and re-executes itself once. (Coding never uses BLAS: the engine computes every
// probability; BLAS serves libtorch's training and evaluation.)
void choose_blas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("LORAZIP_KEEP_BLAS")) return;
  const char* core = nullptr;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq"))
    core = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    core = "Haswell";
#endif
  if (!core) return;
  ::setenv("OPENBLAS_CORETYPE", core, 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: then carry on with OpenBLAS's choice
}

// The table (cli/subcommands.h) is what the messages and the help test read: it must name exactly
// the subcommands registered on `app`. The differences, "" when none.
std::string table_drift(const CLI::App& app) {
  std::string drift, registered = ",";
  for (const CLI::App* sub : app.get_subcommands({})) {
    registered += sub->get_name() + ",";
    if (!is_subcommand(sub->get_name())) drift += " '" + sub->get_name() + "' is registered but not in the table;";
  }
  for (const SubcommandInfo& s : kSubcommands)
    if (registered.find("," + std::string(s.name) + ",") == std::string::npos) drift += std::string(" '") + s.name + "' is in the table but not registered;";
  return drift;
}

void add_full_global_options(CLI::App& app, GlobalOptions& g) {
  add_global_options(app, g);
  app.add_option("--dist-timeout", g.dist_timeout_s,
                 "data-parallel training (torchrun, or RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT set): seconds a rank waits "
                 "for the others before the job fails naming the missing rank")
      ->capture_default_str();
  app.add_option("--device", g.device,
                 "where pretrain / train / run's training compute: cpu, or cuda on a CUDA build (overrides the config's "
                 "device:; coding, and eval's coded figures, always run on the CPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
}

// The device and the data-parallel launch (torchrun --no-python lorazip ...): pretrain, train and
// run train on every rank; the other subcommands run in one process. Sets g.threads.
void prepare_compute(const CLI::App& app, const PipelineCommands& p, GlobalOptions& g) {
  if (g.device != "cpu") {
    if (!uses_device(p))
      throw std::invalid_argument("--device " + g.device + ": only pretrain, train, eval and run compute on a device; coding "
                                  "(compress, decompress, ...) always runs on the CPU, so that files decode the same everywhere");
    resolve_training_device(g.device, 0);  // refuses cuda on a CPU-only build, or without a GPU, before any work
  }
  const DistOptions dist = dist_options_from_env();
  if (dist.world_size > 1) {
    if (!trains(p))
      throw std::invalid_argument(std::string(app.get_subcommands().front()->get_name()) +
                                  " runs in one process (only pretrain, train and run are data-parallel); WORLD_SIZE is " +
                                  std::to_string(dist.world_size) + ": start it without torchrun");
    // Without -t, the processes on this machine share its cores (LOCAL_WORLD_SIZE, set by torchrun).
    if (!g.threads_given && g.threads == 0) {
      const char* lws = std::getenv("LOCAL_WORLD_SIZE");
      const int local = lws && std::atoi(lws) > 0 ? std::atoi(lws) : dist.world_size;
      g.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / local);
    }
    if (dist.rank != 0) set_quiet(true);  // rank 0 alone logs and draws the progress bar; errors still print
    init_process_group_from_env(g.dist_timeout_s);
  }
  g.threads = set_torch_threads(g.threads);
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int lorazip_full_main(int argc, char** argv) {
  choose_blas_kernels(argv);
  tune_allocator_for_training();  // training steps reuse heap memory instead of re-faulting it
  CLI::App app{
      "lorazip: lossless compression of LLM-written text by arithmetic coding under a language model,\n"
      "with one LoRA adapter per domain.\n\n"
      "Pipeline: prepare -> pretrain -> train --domain D -> eval; compress / decompress with the result.\n"
      "'lorazip run' does all of it on configs/default.yaml (the embedded sample corpus)."};
  // At most one subcommand; none is reported after parsing, so that an unknown word or flag is
  // named ("The following arguments were not expected: ...") instead of "A subcommand is required".
  app.require_subcommand(0, 1);
  // Global options (-t, -q) are also accepted after the subcommand: `lorazip compress -t 2 FILE`.
  app.fallthrough();
  GlobalOptions g;
  add_full_global_options(app, g);
  PipelineCommands p;
  add_pipeline_commands(app, p);
  CodecCommands codec;
  add_codec_commands(app, codec);
  ExportCommand* exp = add_export_command(app);
  add_job_commands(app, p);
  LossyCommands* lossy = add_lossy_commands(app);
  FrontierCommand* frontier = add_frontier_command(app);
  if (const std::string drift = table_drift(app); !drift.empty()) {
    std::fprintf(stderr, "lorazip: internal error: cli/subcommands.h and the registered subcommands differ:%s\n", drift.c_str());
    return 1;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (app.get_subcommands().empty()) {
    std::fprintf(stderr, "lorazip: name a subcommand: %s (see lorazip --help)\n", subcommand_list().c_str());
    return 2;
  }
  set_quiet(g.quiet);
  g.progress = progress_enabled(stderr, g.quiet);
  return exit_code_of([&] {
    g.threads_given = app.get_option("--threads")->count() > 0;
    g.device_given = app.get_option("--device")->count() > 0;
    prepare_compute(app, p, g);
    if (int rc = run_pipeline_command(p, g); rc >= 0) return rc;
    if (int rc = run_codec_command(codec, g); rc >= 0) return rc;
    if (int rc = run_export_command(exp, g); rc >= 0) return rc;
    if (int rc = run_lossy_command(lossy, g); rc >= 0) return rc;
    if (int rc = run_frontier_command(frontier, g); rc >= 0) return rc;
    return 0;
  });
}
