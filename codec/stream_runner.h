// Many token streams on one engine model at once: every engine call takes rows from every active
// stream (a stream being encoded feeds a slice of its known tokens, a stream being decoded its one
// newest token), so each weight block is read once per step for all of them, and the call itself
// is split over the threads. The engine gives each row the same bits in any batch, so what a
// stream computes does not depend on which other streams share its calls, on their number, or on
// the thread count.
//
// A Source hands out Tasks (one chunk each) as they become ready (a windowed chunk only after the
// chunk before it is decoded); the runner keeps at most `max_streams` tasks in the cache at once.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "codec/engine/engine.h"

namespace lorazip {

class StreamTask {
 public:
  virtual ~StreamTask() = default;
  // Cache positions the task needs.
  virtual int64_t positions() const = 0;
  // The adapter of the task's rows (nullptr: none).
  virtual const engine::Adapter* adapter() const { return nullptr; }
  // Appends at most `max_rows` tokens to feed now, and whether each row's logits are wanted.
  // Appending nothing while not done is allowed (the task sits out this call).
  virtual void next_rows(int64_t max_rows, std::vector<int32_t>& tokens, std::vector<char>& want) = 0;
  // Called once per wanted row, in row order, with that row's softmax probabilities [V].
  virtual void consume(const float* probs) = 0;
  virtual bool done() const = 0;
};

class StreamSource {
 public:
  virtual ~StreamSource() = default;
  // The next task, or nullptr when none is ready now (or none is left: see exhausted()).
  virtual std::unique_ptr<StreamTask> next_task() = 0;
  virtual bool exhausted() const = 0;
  // A task of this source threw: the source is abandoned (its other tasks are dropped) and the
  // error kept for the caller.
  virtual void fail(std::exception_ptr e) = 0;
  // A task of this source finished.
  virtual void task_done(StreamTask& t) {}
};

struct RunnerOptions {
  int64_t max_streams = 32;  // tasks in the cache at once (1..1024)
  int64_t max_rows = 128;    // rows an engine call takes in all (>= 1)
  int64_t prefill_rows = 64; // rows one task may feed in one call
  std::function<void(int64_t)> on_rows;  // called with the number of wanted rows after each call
};

// Runs every task of every source to its end. Errors of a task go to its source; the call itself
// throws only for errors of the runner (std::bad_alloc and the like).
void run_streams(const engine::Model& model, const std::vector<StreamSource*>& sources, const RunnerOptions& opt);

}  // namespace lorazip
