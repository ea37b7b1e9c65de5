// A progress meter for long coding work, one terminal line redrawn in place as `zstd -v` or `pv`
// draw it:  "notes.txt: 42% 2870/6800 tokens | 143 tokens/s | ETA 27.5s".
// The codec drives it with token counts from any thread. It stays silent for the first second (short
// work prints nothing), redraws at most ten times a second, and finish() wipes the line.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>

namespace lorazip {

// Seconds on a monotonic clock, from an arbitrary origin. The meter only takes differences.
using ProgressClock = std::function<double()>;
double steady_seconds();  // std::chrono::steady_clock

// Whether a meter should draw on `out`: only on a terminal, and not under -q. Files, pipes and CI
// logs get no carriage-return lines.
bool progress_enabled(FILE* out, bool quiet);

class ProgressMeter {
 public:
  static constexpr double kDelaySeconds = 1.0;     // nothing is drawn until the work has run longer than this
  static constexpr double kIntervalSeconds = 0.1;  // two redraws are more than this far apart
  static constexpr size_t kMaxLabelBytes = 40;     // longer labels keep their tail ("...dir/notes.txt")

  // label: what is coded ("notes.txt", "3 files"); total_tokens: 0 when unknown; out: nullptr or
  // enabled == false makes a meter that counts but never writes. The clock is read once here (the
  // start of the run) and at each add() / set() of an enabled meter.
  ProgressMeter(std::string label, int64_t total_tokens, FILE* out = stderr, bool enabled = true,
                ProgressClock clock = steady_seconds);
  ~ProgressMeter();  // finish()
  ProgressMeter(const ProgressMeter&) = delete;
  ProgressMeter& operator=(const ProgressMeter&) = delete;

  // Thread-safe. add() counts `tokens` (>= 0) more tokens done; set() says how many are done in all. The
  // count is one atomic; a redraw happens only when one is due, and a thread that finds another
  // one drawing skips its redraw instead of waiting.
  void add(int64_t tokens);
  void set(int64_t done);
  // Thread-safe: the total, once the codec knows it (after tokenizing, or from a file's header);
  // 0 = unknown. Lets the caller make the meter before the codec has counted anything.
  void set_total(int64_t total_tokens);
  // Wipes the line if one was drawn (spaces over it, the cursor back at column 0) so that what
  // is printed next starts clean; no more redraws after it. Idempotent; the destructor calls it.
  void finish();

  int64_t done() const { return done_.load(std::memory_order_relaxed); }
  int64_t total() const { return total_.load(std::memory_order_relaxed); }

  // The text of the line for `done` tokens after `elapsed_s` seconds, without the carriage return
  // or padding: label, percent and done/total (only done when the total is unknown), tokens/s over
  // the whole run so far, and the ETA at that rate when the total is known.
  std::string format_line(int64_t done, double elapsed_s) const;

 private:
  void maybe_draw();

  std::string label_;
  std::atomic<int64_t> total_;
  FILE* out_;
  bool enabled_;
  ProgressClock clock_;
  double start_;
  std::atomic<int64_t> done_{0};
  std::atomic<double> next_draw_;  // clock time before which add() does not even take the lock
  std::mutex draw_mutex_;          // guards the members below and the writes to out_
  size_t drawn_len_ = 0;           // bytes of the line now on the terminal (0: nothing drawn)
  bool finished_ = false;
};

}  // namespace lorazip
