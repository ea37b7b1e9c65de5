// The engine's worker threads: one process-wide pool that splits a single engine call (one
// document's step) over every core. Work is split by output columns, rows or heads, never inside a
// reduction, so the thread count changes speed only.
#pragma once
#include <cstdint>
#include <functional>

namespace lorazip::engine {

// Threads an engine call may use (0 = every core, the default). Process-wide.
void set_threads(int threads);
int threads();

// Runs fn(t, n) for t = 0 .. n-1 on n threads (the caller runs t = 0) and returns when all are
// done; n = min(threads(), max_parts). Nested calls, and calls while another thread holds the pool,
// run fn(0, 1) on the calling thread. The first exception is rethrown after every part ended.
void parallel_parts(int64_t max_parts, const std::function<void(int part, int parts)>& fn);

// The range [begin, end) of part t of n over `count` items, as even as possible.
inline void part_range(int64_t count, int t, int n, int64_t* begin, int64_t* end) {
  *begin = count * t / n;
  *end = count * (t + 1) / n;
}

}  // namespace lorazip::engine
