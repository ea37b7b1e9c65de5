// Progress and log output. On a terminal (stderr is a TTY) a progress line is redrawn in place;
// otherwise each update is a plain log line, rate-limited, so CI logs stay readable.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace lorazip {

// Prints "[lorazip] msg" to stderr unless quiet mode is on.
void log_info(const std::string& msg);
void set_quiet(bool quiet);
bool stderr_is_tty();

class Progress {
 public:
  // total = number of steps (0 when unknown).
  Progress(std::string label, int64_t total);
  ~Progress();
  // Redraws (TTY) or logs at most every `log_every_s` seconds (plain); `detail` is free text.
  void update(int64_t done, const std::string& detail = "");
  void finish(const std::string& detail = "");
  double elapsed_s() const;

 private:
  std::string label_;
  int64_t total_;
  std::chrono::steady_clock::time_point start_, last_;
  bool tty_;
  bool finished_ = false;
  double log_every_s_ = 10.0;
  size_t last_len_ = 0;
};

std::string format_duration(double seconds);

}  // namespace lorazip
