// lorazip run: options -> job/run_job.h's run_job, with its results printed on stdout.
#include <cstdio>

#include "cli/pipeline_commands.h"
#include "common/log.h"
#include "job/job_config.h"
#include "job/run_job.h"

namespace lorazip {

int cmd_run(const RunRequest& r, const GlobalOptions& g0) {
  const JobRequest& o = r.job;
  JobConfig j = JobConfig::load(o.config);
  if (!o.work_dir.empty()) j.work_dir = o.work_dir;
  if (g0.device_given) j.device = g0.device;
  resolve_training_device(j.device, 0);  // device: cuda that cannot run is refused before the first stage
  GlobalOptions g = apply_config_threads(j, g0);
  log_info("lorazip run: config " + o.config + ", work directory " + j.work_dir + ", " + std::to_string(g.threads) + " threads");
  log_info("resolved config:\n" + j.resolved_text);
  RunJobOptions ro;
  ro.force = r.force;
  ro.threads = g.threads;
  ro.output = [](const std::string& text) { std::printf("%s\n", text.c_str()); };
  run_job(j, ro);
  return 0;
}

}  // namespace lorazip
