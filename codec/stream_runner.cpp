// The stream runner (stream_runner.h): slots of one engine cache filled from the sources, one
// engine call a round over the rows of every active task, then each task's rows consumed (softmax,
// then the task's coder), tasks of different streams in parallel.
#include "codec/stream_runner.h"

#include <algorithm>
#include <exception>
#include <set>
#include <stdexcept>

namespace lorazip {

void run_streams(const engine::Model& model, const std::vector<StreamSource*>& sources, const RunnerOptions& opt) {
  if (opt.max_streams < 1 || opt.max_streams > 1024)
    throw std::invalid_argument("run_streams: max_streams must be in 1..1024, got " + std::to_string(opt.max_streams));
  if (opt.max_rows < 1 || opt.prefill_rows < 1) throw std::invalid_argument("run_streams: row limits must be >= 1");
  const int64_t V = model.config().vocab_size;
  struct Slot {
    std::unique_ptr<StreamTask> task;
    StreamSource* source = nullptr;
    std::vector<int64_t> rows;  // indexes (into the wanted logits) of this call's wanted rows
    std::exception_ptr error;
  };
  std::vector<Slot> slots(static_cast<size_t>(opt.max_streams));
  engine::Cache cache = model.new_cache(opt.max_streams, 1);
  std::set<StreamSource*> failed;
  std::vector<engine::Row> rows;
  std::vector<int32_t> tokens;
  std::vector<char> want;
  std::vector<float> logits;
  size_t next_source = 0;

  auto source_done = [&](StreamSource* s) { return failed.count(s) || s->exhausted(); };
  for (;;) {
    // Fill free slots, taking the sources in turn.
    for (size_t i = 0; i < slots.size(); ++i) {
      if (slots[i].task) continue;
      for (size_t tried = 0; tried < sources.size() && !slots[i].task; ++tried) {
        StreamSource* s = sources[next_source];
        next_source = (next_source + 1) % sources.size();
        if (source_done(s)) continue;
        std::unique_ptr<StreamTask> t;
        try {
          t = s->next_task();
        } catch (...) {
          s->fail(std::current_exception());
          failed.insert(s);
          continue;
        }
        if (!t) continue;
        if (t->done()) {  // nothing to compute (an empty chunk)
          s->task_done(*t);
          --tried;  // the same slot may take another task of any source
          continue;
        }
        model.reset_stream(cache, static_cast<int64_t>(i), std::max<int64_t>(t->positions(), 1));
        slots[i].task = std::move(t);
        slots[i].source = s;
      }
    }
    // Rows: every active task feeds what it has, up to its share of the call.
    int64_t active = 0;
    for (const Slot& sl : slots) active += sl.task ? 1 : 0;
    if (active == 0) {
      bool left = false;
      for (StreamSource* s : sources) left = left || !source_done(s);
      if (!left) return;
      throw std::logic_error("run_streams: a source has tasks left but hands none out while no task runs");
    }
    const int64_t share = std::max<int64_t>(1, std::min(opt.prefill_rows, opt.max_rows / active));
    rows.clear();
    int64_t wanted = 0;
    for (size_t i = 0; i < slots.size(); ++i) {
      Slot& sl = slots[i];
      sl.rows.clear();
      if (!sl.task) continue;
      tokens.clear();
      want.clear();
      try {
        sl.task->next_rows(share, tokens, want);
      } catch (...) {
        sl.error = std::current_exception();
        continue;
      }
      for (size_t r = 0; r < tokens.size(); ++r) {
        rows.push_back({static_cast<int64_t>(i), tokens[r], sl.task->adapter(), want[r] != 0});
        if (want[r]) sl.rows.push_back(wanted++);
      }
    }
    if (!rows.empty()) {
      logits.resize(static_cast<size_t>(std::max<int64_t>(wanted, 1) * V));
      model.run(rows.data(), static_cast<int64_t>(rows.size()), cache, logits.data());
      // Each task consumes its rows in order; tasks in parallel.
      std::vector<size_t> busy;
      for (size_t i = 0; i < slots.size(); ++i)
        if (slots[i].task && !slots[i].rows.empty() && !slots[i].error) busy.push_back(i);
      engine::parallel_parts(static_cast<int64_t>(busy.size()), [&](int part, int parts) {
        int64_t a, b;
        engine::part_range(static_cast<int64_t>(busy.size()), part, parts, &a, &b);
        thread_local std::vector<float> probs;
        probs.resize(static_cast<size_t>(V));
        for (int64_t k = a; k < b; ++k) {
          Slot& sl = slots[busy[static_cast<size_t>(k)]];
          try {
            for (int64_t r : sl.rows) {
              engine::softmax(logits.data() + r * V, V, probs.data());
              sl.task->consume(probs.data());
            }
          } catch (...) {
            sl.error = std::current_exception();
          }
        }
      });
    }
    if (opt.on_rows && wanted > 0) opt.on_rows(wanted);
    // Finished and failed tasks leave their slots; a failure abandons its source's other tasks.
    for (Slot& sl : slots) {
      if (!sl.task) continue;
      if (sl.error && !failed.count(sl.source)) {
        sl.source->fail(sl.error);
        failed.insert(sl.source);
      }
      sl.error = nullptr;
      if (failed.count(sl.source)) {
        sl.task.reset();
        continue;
      }
      if (sl.task->done()) {
        try {
          sl.source->task_done(*sl.task);
        } catch (...) {
          sl.source->fail(std::current_exception());
          failed.insert(sl.source);
        }
        sl.task.reset();
      } else if (rows.empty()) {
        throw std::logic_error("run_streams: no task fed a row, so none can progress");
      }
    }
  }
}

}  // namespace lorazip
