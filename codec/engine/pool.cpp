// The process-wide worker pool (pool.h). A call is cut into parts that any thread claims with an
// atomic counter, the caller included: when a worker is not scheduled (a busy or oversubscribed
// machine), the caller runs the parts itself instead of waiting for it. Workers spin briefly
// between calls (an engine step makes several calls a layer, microseconds apart), then sleep.
#include "codec/engine/pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace lorazip::engine {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

constexpr auto kSpin = std::chrono::microseconds(200);
constexpr int kPartsPerThread = 4;  // finer parts keep the threads even when one is slowed down

std::atomic<int> g_threads{0};
thread_local bool t_inside = false;  // this thread is running a part

class Pool {
 public:
  // Runs parts 0 .. parts-1 of fn on the caller and the workers; returns when all have run.
  void run(int workers, int parts, const std::function<void(int, int)>& fn) {
    grow(workers);
    fn_ = &fn;
    error_ = nullptr;
    completed_.store(0, std::memory_order_relaxed);
    const uint64_t gen = gen_of(state_.load(std::memory_order_relaxed)) + 1;
    // Publishes the job (part 0 of `parts` is next) in one word: a worker still inside the last
    // job can only claim a part of the job whose generation and part count it read together.
    // Sequentially consistent with the sleepers count, so a worker going to sleep either sees the
    // new job or is seen and woken.
    state_.store(pack(gen, parts, 0), std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    }
    t_inside = true;
    work(gen);
    t_inside = false;
    const auto t0 = std::chrono::steady_clock::now();
    bool yielding = false;
    for (int spins = 1; completed_.load(std::memory_order_acquire) < parts; ++spins) {
      if (!yielding && spins % 256 == 0) yielding = std::chrono::steady_clock::now() - t0 >= kSpin;
      if (yielding) std::this_thread::yield();
      else cpu_relax();
    }
    if (error_) std::rethrow_exception(error_);
  }

  static constexpr int kMaxParts = 0xFFFF;

  std::atomic<bool> busy{false};

 private:
  // Claims and runs parts of job `gen` until none is left (or another job was published); returns
  // how many it ran.
  int work(uint64_t gen) {
    for (int ran = 0;; ++ran) {
      uint64_t s = state_.load(std::memory_order_acquire);
      if (gen_of(s) != gen) return ran;
      const int parts = static_cast<int>((s >> 16) & 0xFFFF);
      const int part = static_cast<int>(s & 0xFFFF);
      if (part >= parts) return ran;
      if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) {
        --ran;
        continue;
      }
      try {
        (*fn_)(part, parts);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu_);
        if (!error_) error_ = std::current_exception();
      }
      completed_.fetch_add(1, std::memory_order_acq_rel);
    }
  }

  static uint64_t pack(uint64_t gen, int parts, int next) {
    return gen << 32 | static_cast<uint64_t>(parts) << 16 | static_cast<uint64_t>(next);
  }
  static uint64_t gen_of(uint64_t s) { return s >> 32; }

  void grow(int n) {
    while (static_cast<int>(threads_.size()) < n) {
      threads_.emplace_back([this] { loop(); });
      threads_.back().detach();  // the pool lives as long as the process
    }
  }

  void loop() {
    t_inside = true;
    uint64_t seen = gen_of(state_.load(std::memory_order_acquire));
    // How long to spin before sleeping: halved each time this worker arrives to find every part
    // taken (the machine is busy and the caller ran them), doubled back when it gets work.
    auto spin = kSpin;
    for (;;) {
      const auto t0 = std::chrono::steady_clock::now();
      int spins = 0;
      uint64_t gen;
      while ((gen = gen_of(state_.load(std::memory_order_acquire))) == seen) {
        if (++spins % 256 != 0 || std::chrono::steady_clock::now() - t0 < spin) {
          cpu_relax();
          continue;
        }
        std::unique_lock<std::mutex> lock(mu_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        cv_.wait(lock, [&] { return gen_of(state_.load(std::memory_order_seq_cst)) != seen; });
        sleepers_.fetch_sub(1, std::memory_order_acq_rel);
      }
      seen = gen;
      if (work(gen) > 0) spin = std::min<std::chrono::microseconds>(spin * 2, kSpin);
      else spin = spin / 2;
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mu_, error_mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> state_{0};  // job generation << 32 | parts << 16 | next part to claim
  std::atomic<int> completed_{0};
  std::atomic<int> sleepers_{0};
  const std::function<void(int, int)>* fn_ = nullptr;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: detached workers may outlive static destructors
  return *p;
}

}  // namespace

void set_threads(int n) { g_threads.store(n < 0 ? 0 : n); }

int threads() {
  const int n = g_threads.load();
  return n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

void parallel_parts(int64_t max_parts, const std::function<void(int, int)>& fn) {
  const int n = threads();
  const int parts = static_cast<int>(std::min<int64_t>({static_cast<int64_t>(n) * kPartsPerThread, std::max<int64_t>(max_parts, 1), Pool::kMaxParts}));
  Pool& p = pool();
  if (n <= 1 || parts <= 1 || t_inside || p.busy.exchange(true)) {
    fn(0, 1);
    return;
  }
  struct Release {
    Pool& p;
    ~Release() { p.busy.store(false); }
  } release{p};
  p.run(n - 1, parts, fn);
}

}  // namespace lorazip::engine
