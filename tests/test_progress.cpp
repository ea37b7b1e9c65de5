// The coding progress meter (common/progress.h), driven by a fake clock and written to a
// tmpfile(): what a terminal would show at each moment, byte for byte. No sleeping, no wall clock.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "common/progress.h"

using namespace lorazip;

namespace {

// Everything written to `f` so far; the write position stays at the end.
std::string written(FILE* f) {
  std::fflush(f);
  const long end = std::ftell(f);
  std::string s(static_cast<size_t>(end), '\0');
  std::rewind(f);
  const size_t got = std::fread(s.data(), 1, s.size(), f);
  std::fseek(f, 0, SEEK_END);
  s.resize(got);
  return s;
}

// The terminal line those bytes leave, as a terminal draws them: '\r' goes back to column 0 and
// later characters overwrite earlier ones. The meter must never move to another line.
std::string screen(const std::string& bytes) {
  std::string line;
  size_t col = 0;
  for (char c : bytes) {
    EXPECT_NE(c, '\n') << "the meter wrote a newline";
    if (c == '\r') {
      col = 0;
      continue;
    }
    if (col < line.size()) line[col] = c;
    else line.push_back(c);
    ++col;
  }
  return line;
}

// The screen without trailing blanks: what the user reads.
std::string visible(const std::string& bytes) {
  std::string s = screen(bytes);
  s.erase(s.find_last_not_of(' ') + 1);
  return s;
}

size_t redraws(const std::string& bytes) {
  size_t n = 0;
  for (char c : bytes) n += c == '\r';
  return n;
}

struct FakeClock {
  double t = 0;  // seconds
  ProgressClock fn() {
    return [this] { return t; };
  }
};

struct TmpFile {
  FILE* f = std::tmpfile();
  TmpFile() { EXPECT_NE(f, nullptr); }
  ~TmpFile() {
    if (f) std::fclose(f);
  }
};

}  // namespace

TEST(Progress, SilentDuringTheFirstSecond) {
  FakeClock clock;
  TmpFile out;
  ProgressMeter m("doc.txt", 1000, out.f, true, clock.fn());
  clock.t = 0.5;
  m.add(100);
  clock.t = 1.0;  // one second exactly is not "more than one second"
  m.add(100);
  EXPECT_EQ(written(out.f), "");
  clock.t = 1.25;
  m.add(100);
  // 300 tokens in 1.25 s = 240 tokens/s; 700 left at that rate = 2.92 s.
  EXPECT_EQ(written(out.f), "\rdoc.txt: 30% 300/1000 tokens | 240 tokens/s | ETA 2.9s");
}

TEST(Progress, LineShowsPercentTokensRateAndEtaFromTheClock) {
  FakeClock clock;
  clock.t = 100;  // the origin is arbitrary: only differences count
  TmpFile out;
  ProgressMeter m("doc.txt", 1000, out.f, true, clock.fn());
  clock.t = 102;
  m.set(500);
  EXPECT_EQ(written(out.f), "\rdoc.txt: 50% 500/1000 tokens | 250 tokens/s | ETA 2.0s");
  clock.t = 104;
  m.add(300);
  EXPECT_EQ(visible(written(out.f)), "doc.txt: 80% 800/1000 tokens | 200 tokens/s | ETA 1.0s");
  clock.t = 105;
  m.set(999);  // floor: 99.9% is not shown as 100%
  EXPECT_EQ(visible(written(out.f)), "doc.txt: 99% 999/1000 tokens | 200 tokens/s | ETA 0.0s");
}

TEST(Progress, LongEtaAndSlowRateAreReadable) {
  FakeClock clock;
  TmpFile out;
  ProgressMeter m("big.txt", 10000, out.f, true, clock.fn());
  clock.t = 10;
  m.set(100);  // 10 tokens/s, 9900 left: 990 s
  EXPECT_EQ(visible(written(out.f)), "big.txt: 1% 100/10000 tokens | 10 tokens/s | ETA 16m30s");
  clock.t = 40;
  m.set(100);  // 2.5 tokens/s, 9900 left: 3960 s
  EXPECT_EQ(visible(written(out.f)), "big.txt: 1% 100/10000 tokens | 2.5 tokens/s | ETA 1h06m");
  clock.t = 50;
  m.set(0);
  EXPECT_EQ(visible(written(out.f)), "big.txt: 0% 0/10000 tokens | 0.0 tokens/s | ETA --");
}

TEST(Progress, AnUnderestimatedTotalStopsAtOneHundredPercent) {
  FakeClock clock;
  TmpFile out;
  ProgressMeter m("doc.txt", 1000, out.f, true, clock.fn());
  clock.t = 2;
  m.set(1200);
  EXPECT_EQ(visible(written(out.f)), "doc.txt: 100% 1200/1000 tokens | 600 tokens/s | ETA 0.0s");
}

TEST(Progress, RedrawsAtMostTenTimesASecond) {
  FakeClock clock;
  TmpFile out;
  ProgressMeter m("doc.txt", 0, out.f, true, clock.fn());
  // An add() every 10 ms for two seconds after the first: 200 calls, 20 redraws at most.
  for (int i = 1; i <= 200; ++i) {
    clock.t = 1.0 + 0.01 * i;
    m.add(1);
  }
  const size_t n = redraws(written(out.f));
  EXPECT_LE(n, 20u);
  EXPECT_GE(n, 19u);  // and it does keep redrawing
  EXPECT_EQ(m.done(), 200);
}

TEST(Progress, ARedrawWaitsForTheInterval) {
  FakeClock clock;
  TmpFile out;
  ProgressMeter m("doc.txt", 0, out.f, true, clock.fn());
  clock.t = 1.5;
  m.add(1);
  EXPECT_EQ(redraws(written(out.f)), 1u);
  clock.t = 1.55;
  m.add(1);
  EXPECT_EQ(redraws(written(out.f)), 1u);
  clock.t = 1.65;
  m.add(1);
  EXPECT_EQ(redraws(written(out.f)), 2u);
  EXPECT_EQ(visible(written(out.f)), "doc.txt: 3 tokens | 1.8 tokens/s");
}

TEST(Progress, UnknownTotalShowsCountAndRateOnly) {
  FakeClock clock;
  TmpFile out;
  ProgressMeter m("3 files", 0, out.f, true, clock.fn());
  clock.t = 2;
  m.set(300);
  EXPECT_EQ(written(out.f), "\r3 files: 300 tokens | 150 tokens/s");
}

TEST(Progress, ATotalLearnedLaterShowsPercentAndEta) {
  FakeClock clock;
  TmpFile out;
  ProgressMeter m("doc.txt", 0, out.f, true, clock.fn());  // made before the codec has tokenized
  clock.t = 2;
  m.set(100);
  EXPECT_EQ(visible(written(out.f)), "doc.txt: 100 tokens | 50 tokens/s");
  m.set_total(400);
  EXPECT_EQ(m.total(), 400);
  clock.t = 4;
  m.set(200);
  EXPECT_EQ(visible(written(out.f)), "doc.txt: 50% 200/400 tokens | 50 tokens/s | ETA 4.0s");
}

TEST(Progress, AShorterLineLeavesNoLeftovers) {
  FakeClock clock;
  TmpFile out;
  ProgressMeter m("doc.txt", 0, out.f, true, clock.fn());
  clock.t = 1.5;
  m.set(1000000);
  const std::string first = visible(written(out.f));
  EXPECT_EQ(first, "doc.txt: 1000000 tokens | 666667 tokens/s");
  clock.t = 1000;
  m.set(1000001);
  EXPECT_EQ(visible(written(out.f)), "doc.txt: 1000001 tokens | 1000 tokens/s");
}

TEST(Progress, FinishWipesTheLineAndStopsRedrawing) {
  FakeClock clock;
  TmpFile out;
  ProgressMeter m("doc.txt", 1000, out.f, true, clock.fn());
  clock.t = 2;
  m.set(500);
  ASSERT_FALSE(visible(written(out.f)).empty());
  m.finish();
  std::string bytes = written(out.f);
  EXPECT_EQ(visible(bytes), "");
  EXPECT_EQ(bytes.back(), '\r');  // what is printed next starts at column 0
  const size_t after_finish = bytes.size();
  clock.t = 3;
  m.add(100);
  m.finish();
  EXPECT_EQ(written(out.f).size(), after_finish);
  EXPECT_EQ(m.done(), 600);
}

TEST(Progress, ShortWorkPrintsNothingAtAll) {
  FakeClock clock;
  TmpFile out;
  {
    ProgressMeter m("doc.txt", 1000, out.f, true, clock.fn());
    clock.t = 0.9;
    m.set(1000);
  }  // the destructor finishes
  EXPECT_EQ(written(out.f), "");
}

TEST(Progress, DisabledMeterPrintsNothingButCounts) {
  FakeClock clock;
  TmpFile out;
  ProgressMeter m("doc.txt", 1000, out.f, false, clock.fn());
  ProgressMeter no_output("doc.txt", 1000, nullptr, true, clock.fn());
  for (int i = 1; i <= 50; ++i) {
    clock.t = 0.1 * i;
    m.add(10);
    no_output.add(10);
  }
  m.finish();
  no_output.finish();
  EXPECT_EQ(written(out.f), "");
  EXPECT_EQ(m.done(), 500);
  EXPECT_EQ(no_output.done(), 500);
}

// Runs add(1) `n` times on each of two threads that start together.
void add_from_two_threads(ProgressMeter& m, int n) {
  std::atomic<int> ready{0};
  auto work = [&] {
    ready.fetch_add(1);
    while (ready.load() < 2) {
    }
    for (int i = 0; i < n; ++i) m.add(1);
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
}

TEST(Progress, ConcurrentAddsSumExactly) {
  // Without drawing, add() is nothing but the counter: the tightest race.
  ProgressMeter quiet("par", 0, nullptr, false);
  add_from_two_threads(quiet, 10000000);
  EXPECT_EQ(quiet.done(), 20000000);

  // With a clock both threads read, 1 ms later at every call, so that redraws happen while they add.
  std::atomic<int64_t> ticks{0};
  ProgressClock clock = [&ticks] { return 1e-3 * static_cast<double>(ticks.fetch_add(1)); };
  TmpFile out;
  ProgressMeter m("par", 0, out.f, true, clock);
  add_from_two_threads(m, 200000);
  EXPECT_EQ(m.done(), 400000);
  // Redraws did happen, and no two were interleaved: each starts with the label.
  const std::string bytes = written(out.f);
  EXPECT_GT(redraws(bytes), 10u);
  size_t at = 0;
  while ((at = bytes.find('\r', at)) != std::string::npos) {
    ++at;
    EXPECT_EQ(bytes.compare(at, 5, "par: "), 0) << "at byte " << at;
  }
}

TEST(Progress, LongLabelKeepsItsTail) {
  FakeClock clock;
  TmpFile out;
  const std::string path = "/home/someone/projects/corpora/2024/llm-outputs/batch-17/notes.txt";
  ProgressMeter m(path, 0, out.f, true, clock.fn());
  clock.t = 2;
  m.set(10);
  const std::string line = visible(written(out.f));
  const std::string label = line.substr(0, line.find(": "));
  EXPECT_EQ(label.size(), ProgressMeter::kMaxLabelBytes);
  EXPECT_EQ(label.substr(0, 3), "...");
  EXPECT_EQ(path.compare(path.size() - (label.size() - 3), std::string::npos, label, 3), 0);

  // A multi-byte character is never cut in half: 30 x "é" (2 bytes each) keeps 18 of them.
  std::string accents;
  for (int i = 0; i < 30; ++i) accents += "\xC3\xA9";
  ProgressMeter u(accents, 0, nullptr, false);
  std::string kept = u.format_line(0, 1).substr(0, u.format_line(0, 1).find(": "));
  EXPECT_EQ(kept, "..." + accents.substr(0, 36));
}

TEST(Progress, EnabledOnlyOnATerminalWithoutQuiet) {
  TmpFile file;
  EXPECT_FALSE(progress_enabled(file.f, false));  // a file (or pipe) gets no '\r' lines
  EXPECT_FALSE(progress_enabled(file.f, true));
  EXPECT_FALSE(progress_enabled(nullptr, false));

  const int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) {
    if (master >= 0) ::close(master);
    GTEST_SKIP() << "no pseudo-terminal here";
  }
  FILE* tty = std::fopen(::ptsname(master), "w");
  ASSERT_NE(tty, nullptr);
  EXPECT_TRUE(progress_enabled(tty, false));
  EXPECT_FALSE(progress_enabled(tty, true));  // -q
  std::fclose(tty);
  ::close(master);
}
