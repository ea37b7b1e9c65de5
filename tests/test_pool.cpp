// The engine's worker pool (codec/engine/pool.h): every part of every call runs exactly once, on
// any thread count, also when calls follow each other with different part counts while the
// machine is oversubscribed (workers preempted between reading a job and claiming a part of it).
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "codec/engine/pool.h"

namespace lorazip::engine {
namespace {

struct ThreadsGuard {
  ~ThreadsGuard() { set_threads(0); }
};

// Calls parallel_parts `calls` times, cycling the part count through 1..max_parts, and returns how
// many parts ran other than exactly once.
int64_t miscounted_parts(int calls, int max_parts) {
  std::vector<std::atomic<int>> runs(static_cast<size_t>(max_parts) * 8);
  int64_t wrong = 0;
  for (int c = 0; c < calls; ++c) {
    const int want = 1 + c % max_parts;
    for (auto& r : runs) r.store(0, std::memory_order_relaxed);
    std::atomic<int> parts_reported{0};
    std::atomic<int64_t> out_of_range{0};
    parallel_parts(want, [&](int part, int parts) {
      parts_reported.store(parts, std::memory_order_relaxed);
      if (part >= 0 && part < static_cast<int>(runs.size())) runs[static_cast<size_t>(part)].fetch_add(1);
      else out_of_range.fetch_add(1);
    });
    const int seen_parts = parts_reported.load();
    wrong += out_of_range.load();
    for (int p = 0; p < static_cast<int>(runs.size()); ++p) {
      const int r = runs[static_cast<size_t>(p)].load();
      if (r != (p < seen_parts ? 1 : 0)) ++wrong;
    }
  }
  return wrong;
}

TEST(EnginePool, EveryPartRunsOnceOnEveryThreadCount) {
  ThreadsGuard guard;
  for (int threads : {1, 2, 3, 8}) {
    set_threads(threads);
    EXPECT_EQ(miscounted_parts(2000, 40), 0) << threads << " threads";
  }
}

TEST(EnginePool, GrowingPartCountsWithPreemptedWorkersRunEachPartOnce) {
  // More threads than cores, and each call asks for more parts than the one before, so that a
  // worker that read the last job's exhausted part counter and was preempted would, if the part
  // count were read apart from the job, claim a part of the next job (twice run; the caller then
  // waits for a count it has passed).
  ThreadsGuard guard;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  set_threads(4 * cores);
  EXPECT_EQ(miscounted_parts(200000, 16 * cores), 0);
}

TEST(EnginePool, FirstExceptionIsRethrownAfterEveryPartRan) {
  ThreadsGuard guard;
  set_threads(4);
  std::atomic<int> ran{0};
  EXPECT_THROW(parallel_parts(16,
                              [&](int part, int) {
                                ran.fetch_add(1);
                                if (part % 3 == 1) throw std::runtime_error("part failed");
                              }),
               std::runtime_error);
  EXPECT_EQ(ran.load(), 16);
  // The pool still works after the exception.
  EXPECT_EQ(miscounted_parts(100, 16), 0);
}

TEST(EnginePool, NestedCallsRunOnTheCallingThread) {
  ThreadsGuard guard;
  set_threads(4);
  std::atomic<int> inner_parts{0};
  parallel_parts(8, [&](int, int) {
    parallel_parts(8, [&](int part, int parts) {
      EXPECT_EQ(part, 0);
      EXPECT_EQ(parts, 1);
      inner_parts.fetch_add(1);
    });
  });
  EXPECT_EQ(inner_parts.load(), 8);
}

}  // namespace
}  // namespace lorazip::engine
