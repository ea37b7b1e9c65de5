// The process-wide worker pool (pool.h). Workers spin briefly between parts (an engine step hands
// out several parts a layer, microseconds apart), then sleep on a condition variable, so an idle or
// oversubscribed machine loses nothing to spinning.
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

std::atomic<int> g_threads{0};
thread_local bool t_inside = false;  // this thread is running a part

class Pool {
 public:
  void run(int parts, const std::function<void(int, int)>& fn) {
    grow(parts - 1);
    fn_ = &fn;
    parts_ = parts;
    error_ = nullptr;
    pending_.store(parts - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int i = 0; i < parts - 1; ++i) workers_[static_cast<size_t>(i)]->go.store(true, std::memory_order_release);
    }
    cv_.notify_all();
    t_inside = true;
    try {
      fn(0, parts);
    } catch (...) {
      record(std::current_exception());
    }
    t_inside = false;
    const auto t0 = std::chrono::steady_clock::now();
    for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
      if (spins < 64 || std::chrono::steady_clock::now() - t0 < kSpin) cpu_relax();
      else std::this_thread::yield();
    }
    if (error_) std::rethrow_exception(error_);
  }

  std::atomic<bool> busy{false};

 private:
  struct Worker {
    std::atomic<bool> go{false};
    std::thread thread;
  };

  void grow(int n) {
    while (static_cast<int>(workers_.size()) < n) {
      auto w = std::make_unique<Worker>();
      const int index = static_cast<int>(workers_.size());
      Worker* self = w.get();
      workers_.push_back(std::move(w));
      self->thread = std::thread([this, self, index] { loop(self, index + 1); });
      self->thread.detach();  // the pool lives as long as the process
    }
  }

  void loop(Worker* self, int part) {
    t_inside = true;
    for (;;) {
      const auto t0 = std::chrono::steady_clock::now();
      int spins = 0;
      while (!self->go.load(std::memory_order_acquire)) {
        if (spins++ < 64 || std::chrono::steady_clock::now() - t0 < kSpin) {
          cpu_relax();
          continue;
        }
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return self->go.load(std::memory_order_acquire); });
      }
      self->go.store(false, std::memory_order_relaxed);
      try {
        (*fn_)(part, parts_);
      } catch (...) {
        record(std::current_exception());
      }
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  void record(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(error_mu_);
    if (!error_) error_ = e;
  }

  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex mu_, error_mu_;
  std::condition_variable cv_;
  std::atomic<int> pending_{0};
  const std::function<void(int, int)>* fn_ = nullptr;
  int parts_ = 1;
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
  const int parts = static_cast<int>(std::min<int64_t>(threads(), std::max<int64_t>(max_parts, 1)));
  Pool& p = pool();
  if (parts <= 1 || t_inside || p.busy.exchange(true)) {
    fn(0, 1);
    return;
  }
  struct Release {
    Pool& p;
    ~Release() { p.busy.store(false); }
  } release{p};
  p.run(parts, fn);
}

}  // namespace lorazip::engine
