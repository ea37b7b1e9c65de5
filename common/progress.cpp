// ProgressMeter: an atomic token count, and a line redrawn with '\r' under a mutex that a busy
// thread skips rather than waits on. Durations are written as common/log.h's format_duration
// writes them everywhere else.
#include "common/progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "common/log.h"

namespace lorazip {
namespace {

// The last `max_bytes` bytes of `label` behind "...", cut at a UTF-8 character boundary.
std::string shorten_label(std::string label, size_t max_bytes) {
  if (label.size() <= max_bytes) return label;
  size_t cut = label.size() - (max_bytes - 3);
  while (cut < label.size() && (static_cast<unsigned char>(label[cut]) & 0xC0) == 0x80) ++cut;  // continuation byte
  return "..." + label.substr(cut);
}

}  // namespace

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool progress_enabled(FILE* out, bool quiet) { return !quiet && out && ::isatty(::fileno(out)) == 1; }

ProgressMeter::ProgressMeter(std::string label, int64_t total_tokens, FILE* out, bool enabled, ProgressClock clock)
    : label_(shorten_label(std::move(label), kMaxLabelBytes)),
      total_(std::max<int64_t>(total_tokens, 0)),
      out_(out),
      enabled_(enabled && out != nullptr),
      clock_(std::move(clock)),
      start_(enabled_ ? clock_() : 0.0),
      next_draw_(start_ + kDelaySeconds) {}

ProgressMeter::~ProgressMeter() { finish(); }

void ProgressMeter::add(int64_t tokens) {
  done_.fetch_add(tokens, std::memory_order_relaxed);
  if (enabled_) maybe_draw();
}

void ProgressMeter::set(int64_t done) {
  done_.store(done, std::memory_order_relaxed);
  if (enabled_) maybe_draw();
}

void ProgressMeter::set_total(int64_t total_tokens) {
  total_.store(std::max<int64_t>(total_tokens, 0), std::memory_order_relaxed);
}

std::string ProgressMeter::format_line(int64_t done, double elapsed_s) const {
  done = std::max<int64_t>(done, 0);
  const int64_t total = total_.load(std::memory_order_relaxed);
  const double rate = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0.0;  // tokens/s, whole run
  char rate_text[32];
  std::snprintf(rate_text, sizeof rate_text, rate < 10 ? "%.1f" : "%.0f", rate);
  char head[96];
  if (total > 0) {
    // Floor, so that 100% means done; a total that was an estimate never shows more than 100%.
    const int64_t shown = std::min(done, total);
    std::snprintf(head, sizeof head, "%lld%% %lld/%lld tokens", static_cast<long long>(shown * 100 / total),
                  static_cast<long long>(done), static_cast<long long>(total));
  } else {
    std::snprintf(head, sizeof head, "%lld tokens", static_cast<long long>(done));
  }
  std::string line = label_ + ": " + head + " | " + rate_text + " tokens/s";
  if (total > 0) {
    if (done >= total) line += " | ETA 0.0s";
    else if (rate > 0) line += " | ETA " + format_duration(static_cast<double>(total - done) / rate);
    else line += " | ETA --";
  }
  return line;
}

void ProgressMeter::maybe_draw() {
  const double now = clock_();
  if (!(now > next_draw_.load(std::memory_order_relaxed))) return;
  std::unique_lock<std::mutex> lock(draw_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || finished_) return;
  if (!(now > next_draw_.load(std::memory_order_relaxed))) return;  // another thread drew meanwhile
  next_draw_.store(now + kIntervalSeconds, std::memory_order_relaxed);
  const std::string line = format_line(done_.load(std::memory_order_relaxed), now - start_);
  // Spaces over what is left of a longer previous line.
  std::string text = "\r" + line;
  if (line.size() < drawn_len_) text.append(drawn_len_ - line.size(), ' ');
  std::fwrite(text.data(), 1, text.size(), out_);
  std::fflush(out_);
  drawn_len_ = std::max(drawn_len_, line.size());
}

void ProgressMeter::finish() {
  std::lock_guard<std::mutex> lock(draw_mutex_);
  if (finished_) return;
  finished_ = true;
  if (drawn_len_ == 0) return;
  std::string text = "\r" + std::string(drawn_len_, ' ') + "\r";
  std::fwrite(text.data(), 1, text.size(), out_);
  std::fflush(out_);
}

}  // namespace lorazip
