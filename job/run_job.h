// `lorazip run` as a library call: the main job's stages (prepare -> pretrain -> one adapter per
// domain -> eval -> codec check), each cached in WORK/stages.json under a stamp, the SHA-256 of
// everything it depends on (its config section, the input files' bytes, the stamps of the stages
// before it). A stage whose stamp is unchanged and whose outputs exist is skipped; one that was
// interrupted with the same stamp resumes from its checkpoint; a changed stamp reruns it and
// every stage after it.
#pragma once
#include <functional>
#include <string>

#include "job/job_config.h"

namespace lorazip {

struct RunJobOptions {
  bool force = false;  // rerun every stage, whatever the cache says
  int threads = 1;     // intra-op threads in force
  // Receives the job's results for the user as they come (prepare's statistics, the report in
  // Markdown, the codec check's line); the library itself prints nothing.
  std::function<void(const std::string&)> output;
};

// The stamps that decide whether a stage reruns. Each folds in the stamps it builds on.
std::string prepare_stamp(const JobConfig& j);
// The resolved eval and codec sections, and the bytes of every extra corpus file (an optional
// corpus that is absent counts as absent), on top of the base, data and adapter stamps.
std::string eval_stamp(const JobConfig& j, const std::string& base_stamp, const std::string& prepare_stamp,
                       const std::string& adapters_stamp);

// Runs the job in j.work_dir. Errors propagate from the failing stage; the cache then records it
// as started, not done.
void run_job(const JobConfig& j, const RunJobOptions& o);

}  // namespace lorazip
