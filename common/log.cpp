#include "common/log.h"

#include <unistd.h>

#include <cstdio>

namespace lorazip {
namespace {
bool g_quiet = false;
}

void set_quiet(bool quiet) { g_quiet = quiet; }
bool stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

void log_info(const std::string& msg) {
  if (g_quiet) return;
  std::fprintf(stderr, "[lorazip] %s\n", msg.c_str());
  std::fflush(stderr);
}

std::string format_duration(double s) {
  if (s < 0) s = 0;
  char buf[32];
  int t = static_cast<int>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%dm%02ds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%.1fs", s);
  return buf;
}

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), start_(std::chrono::steady_clock::now()), last_(start_),
      tty_(stderr_is_tty()) {}

Progress::~Progress() {
  if (tty_ && !finished_ && last_len_ && !g_quiet) std::fprintf(stderr, "\n");
}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done, const std::string& detail) {
  if (g_quiet) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_).count();
  if (since < (tty_ ? 0.2 : log_every_s_) && done != total_) return;
  last_ = now;
  double el = elapsed_s();
  std::string eta;
  if (total_ > 0 && done > 0) eta = " ETA " + format_duration(el * (total_ - done) / done);
  char head[160];
  if (total_ > 0)
    std::snprintf(head, sizeof head, "%s %lld/%lld (%3.0f%%)", label_.c_str(), (long long)done, (long long)total_,
                  100.0 * done / total_);
  else
    std::snprintf(head, sizeof head, "%s %lld", label_.c_str(), (long long)done);
  std::string line = std::string(head) + (detail.empty() ? "" : " | " + detail) + " | " + format_duration(el) + eta;
  if (tty_) {
    std::string pad = line.size() < last_len_ ? std::string(last_len_ - line.size(), ' ') : "";
    std::fprintf(stderr, "\r%s%s", line.c_str(), pad.c_str());
    last_len_ = line.size();
  } else {
    std::fprintf(stderr, "[lorazip] %s\n", line.c_str());
  }
  std::fflush(stderr);
}

void Progress::finish(const std::string& detail) {
  if (finished_) return;
  finished_ = true;
  if (g_quiet) return;
  std::string line = label_ + " done" + (detail.empty() ? "" : " | " + detail) + " | " + format_duration(elapsed_s());
  if (tty_) {
    std::string pad = line.size() < last_len_ ? std::string(last_len_ - line.size(), ' ') : "";
    std::fprintf(stderr, "\r%s%s\n", line.c_str(), pad.c_str());
  } else {
    std::fprintf(stderr, "[lorazip] %s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace lorazip
