// The c10d side of data-parallel training (see distributed.h): the launcher's variables, the
// TCPStore rendezvous, the Gloo process group, bucketed all-reduces, and errors that name the rank
// that died or hung. Every rank writes a heartbeat ("alive/<rank>" = collective number and step)
// into the store before each collective, so a rank whose collective fails can tell who fell behind.
// On a CUDA build, gradients on the GPU are all-reduced by an NCCL group started on first use; the
// few doubles and the barriers stay on Gloo.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO  // ProcessGroupGloo.hpp is empty without it; Debian's libtorch is built with Gloo
#endif
#include "train/distributed.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#ifdef LORAZIP_CUDA  // a CUDA libtorch (CMake LORAZIP_CUDA): CUDA tensors travel through NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL  // ProcessGroupNCCL.hpp is empty without it; PyPI's CUDA libtorch has NCCL
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace lorazip {

namespace {

const char* env_or_null(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

int env_int(const char* name, int lo, int hi, bool required, int fallback) {
  const char* v = env_or_null(name);
  if (!v) {
    if (required)
      throw std::invalid_argument(std::string("data-parallel launch: ") + name +
                                  " is not set (WORLD_SIZE is; set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT together, "
                                  "as torchrun does)");
    return fallback;
  }
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi)
    throw std::invalid_argument(std::string("data-parallel launch: ") + name + "='" + v + "' is not an integer in [" +
                                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int>(x);
}

std::chrono::milliseconds to_ms(double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000.0)); }

std::string bytes_to_string(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }

// The process groups' common base: c10d::ProcessGroup in libtorch 1.x (Debian's 1.13); torch 2.x
// made the backends (Gloo, NCCL) c10d::Backend subclasses with the same collective calls.
#if TORCH_VERSION_MAJOR >= 2
using BackendBase = c10d::Backend;
#else
using BackendBase = c10d::ProcessGroup;
#endif

std::shared_ptr<DistGroup> g_group;
std::mutex g_group_mutex;

}  // namespace

DistOptions dist_options_from_env() {
  DistOptions o;
  o.world_size = env_int("WORLD_SIZE", 1, 1 << 20, false, 1);
  if (o.world_size == 1) return o;
  o.rank = env_int("RANK", 0, o.world_size - 1, true, 0);
  o.local_rank = env_int("LOCAL_RANK", 0, 1 << 20, false, 0);
  o.master_port = env_int("MASTER_PORT", 1, 65535, true, 0);
  const char* addr = env_or_null("MASTER_ADDR");
  if (!addr) throw std::invalid_argument("data-parallel launch: MASTER_ADDR is not set (WORLD_SIZE is); set it to rank 0's host");
  o.master_addr = addr;
  const char* agent = env_or_null("TORCHELASTIC_USE_AGENT_STORE");
  o.agent_store = agent && std::string(agent) == "True";
  return o;
}

struct DistGroup::Impl {
  DistOptions opt;
  c10::intrusive_ptr<c10d::TCPStore> tcp;
  c10::intrusive_ptr<c10d::Store> store;  // prefixed: "lorazip/"
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  c10::intrusive_ptr<BackendBase> nccl;  // CUDA builds: created by the first all-reduce of GPU tensors
  int64_t seq = 0;  // collectives started by this rank
  double comm_s = 0;

  std::string where() const { return opt.master_addr + ":" + std::to_string(opt.master_port); }

  void heartbeat(int64_t step) {
    ++seq;
    const std::string v = std::to_string(seq) + " " + std::to_string(step);
    try {
      store->set("alive/" + std::to_string(opt.rank), std::vector<uint8_t>(v.begin(), v.end()));
    } catch (const std::exception& e) {
      throw std::runtime_error("data-parallel training: rank " + std::to_string(opt.rank) + " at step " + std::to_string(step) +
                               " cannot reach the store at " + where() +
                               (opt.agent_store ? " (served by torchrun's agent)" : " (served by rank 0)") +
                               ": rank 0 or its launcher is gone (" + e.what() + ")");
    }
  }

  // Called when a collective failed after `waited_s`: which ranks did not reach it?
  std::string diagnose(int64_t step, double waited_s, const std::string& cause) {
    std::string behind, arrived;
    bool store_ok = true;
    try {
      store->setTimeout(std::chrono::milliseconds(5000));
      for (int r = 0; r < opt.world_size; ++r) {
        if (r == opt.rank) continue;
        const std::string key = "alive/" + std::to_string(r);
        int64_t rseq = 0, rstep = -1;
        if (store->check({key})) {
          std::string v = bytes_to_string(store->get(key));
          std::sscanf(v.c_str(), "%ld %ld", &rseq, &rstep);
        }
        const std::string who = "rank " + std::to_string(r) + (rstep >= 0 ? " (last seen at step " + std::to_string(rstep) + ")"
                                                                           : " (never reached a collective)");
        (rseq < seq ? behind : arrived) += (std::string((rseq < seq ? behind : arrived).empty() ? "" : ", ") + who);
      }
    } catch (const std::exception&) {
      store_ok = false;
    }
    const bool timed_out = waited_s >= opt.timeout_s * 0.9;
    std::string msg = "data-parallel training: rank " + std::to_string(opt.rank) + " failed in a collective" +
                      (step >= 0 ? " at step " + std::to_string(step) : std::string()) + " after " + std::to_string(static_cast<int64_t>(waited_s)) + " s: ";
    if (!store_ok)
      msg += "rank 0 is gone (the store at " + where() + " does not answer)";
    else if (!behind.empty())
      msg += behind + (timed_out ? " did not arrive within the timeout of " + std::to_string(static_cast<int64_t>(opt.timeout_s)) +
                                       " s (hung or killed)"
                                 : " dropped out (its process died)");
    else
      msg += "every rank (" + arrived + ") reached this collective, but a peer's connection failed (died inside it)";
    return msg + ". Cause: " + cause + ". The last checkpoint is intact; rerun with --resume and the same number of processes";
  }

  void wait(const c10::intrusive_ptr<c10d::Work>& w, int64_t step, std::chrono::steady_clock::time_point t0) {
    try {
      w->wait();
    } catch (const std::exception& e) {
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      throw std::runtime_error(diagnose(step, waited, e.what()));
    }
  }
  void add_time(std::chrono::steady_clock::time_point t0) {
    comm_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  // The group that all-reduces tensors on `dev`: Gloo for the CPU, NCCL for CUDA.
  BackendBase& group_for(const at::Device& dev) {
    if (dev.is_cpu()) return *pg;
#ifdef LORAZIP_CUDA
    if (dev.is_cuda()) {
      if (!nccl) {
        auto no = c10d::ProcessGroupNCCL::Options::create();
        no->timeout = to_ms(opt.timeout_s);
        try {
          nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl", store), opt.rank,
                                                             opt.world_size, no);
        } catch (const std::exception& e) {
          throw std::runtime_error("data-parallel training: rank " + std::to_string(opt.rank) +
                                   " could not start NCCL through the store at " + where() + ": " + e.what());
        }
      }
      return *nccl;
    }
#endif
    throw std::invalid_argument("data-parallel training: tensors on " + dev.str() +
                                " cannot be all-reduced by this lorazip (Gloo on the CPU; NCCL needs a CUDA build)");
  }

  void reduce_doubles(double* v, size_t n, int64_t step, c10d::ReduceOp op) {
    auto t0 = std::chrono::steady_clock::now();
    heartbeat(step);
    std::vector<at::Tensor> t = {at::from_blob(v, {static_cast<int64_t>(n)}, at::kDouble).clone()};
    c10d::AllreduceOptions ao;
    ao.reduceOp = op;
    wait(pg->allreduce(t, ao), step, t0);
    std::copy(t[0].data_ptr<double>(), t[0].data_ptr<double>() + n, v);
    add_time(t0);
  }
};

DistGroup::DistGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DistGroup::~DistGroup() = default;

std::shared_ptr<DistGroup> DistGroup::connect(const DistOptions& o) {
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size)
    throw std::invalid_argument("data-parallel launch: rank " + std::to_string(o.rank) + " is outside world size " +
                                std::to_string(o.world_size));
  if (!(o.timeout_s > 0)) throw std::invalid_argument("data-parallel launch: the timeout must be > 0 seconds");
  if (o.master_port < 1 || o.master_port > 65535)
    throw std::invalid_argument("data-parallel launch: MASTER_PORT " + std::to_string(o.master_port) + " is not a TCP port");
  auto impl = std::make_unique<Impl>();
  impl->opt = o;
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(o.master_port);
  so.isServer = o.rank == 0 && !o.agent_store;
  so.numWorkers = static_cast<size_t>(o.world_size);
  so.waitWorkers = !o.agent_store;
  so.timeout = to_ms(o.timeout_s);
  so.multiTenant = true;
  try {
    impl->tcp = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
  } catch (const std::exception& e) {
    throw std::runtime_error("data-parallel launch: rank " + std::to_string(o.rank) + " could not " +
                             (so.isServer ? "serve" : "reach") + " the store at " + impl->where() + " within " +
                             std::to_string(static_cast<int64_t>(o.timeout_s)) +
                             " s (are all WORLD_SIZE=" + std::to_string(o.world_size) +
                             " ranks started, with the same MASTER_ADDR and MASTER_PORT?): " + e.what());
  }
  impl->store = c10::make_intrusive<c10d::PrefixStore>("lorazip", impl->tcp);
  auto go = c10d::ProcessGroupGloo::Options::create(to_ms(o.timeout_s));
  try {
    // GLOO_SOCKET_IFNAME picks the network interface, as in PyTorch; otherwise the host name's address.
    if (const char* ifname = env_or_null("GLOO_SOCKET_IFNAME"))
      go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else
      go->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    go->threads = 2;
    impl->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, o.rank, o.world_size, go);
  } catch (const std::exception& e) {
    throw std::runtime_error("data-parallel launch: rank " + std::to_string(o.rank) + " could not connect to the other " +
                             std::to_string(o.world_size - 1) + " rank(s) through the store at " + impl->where() + ": " +
                             e.what());
  }
  return std::shared_ptr<DistGroup>(new DistGroup(std::move(impl)));
}

int DistGroup::rank() const { return impl_->opt.rank; }
int DistGroup::world_size() const { return impl_->opt.world_size; }
const DistOptions& DistGroup::options() const { return impl_->opt; }
double DistGroup::comm_seconds() const { return impl_->comm_s; }

void DistGroup::all_reduce_sum(std::vector<at::Tensor>& tensors, int64_t step) {
  auto t0 = std::chrono::steady_clock::now();
  impl_->heartbeat(step);
  constexpr int64_t kBucketElems = (int64_t{25} << 20) / 4;  // 25 MiB of float32
  struct Bucket {
    size_t first, last;  // tensors [first, last)
    std::vector<at::Tensor> flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<Bucket> buckets;
  for (size_t i = 0; i < tensors.size();) {
    Bucket b;
    b.first = i;
    int64_t n = 0;
    do {
      if (tensors[i].scalar_type() != at::kFloat)
        throw std::invalid_argument("all_reduce_sum: tensor " + std::to_string(i) + " is not float32");
      if (tensors[i].device() != tensors[0].device())
        throw std::invalid_argument("all_reduce_sum: tensor " + std::to_string(i) + " is on " + tensors[i].device().str() +
                                    ", tensor 0 on " + tensors[0].device().str() + "; pass tensors of one device");
      n += tensors[i].numel();
      ++i;
    } while (i < tensors.size() && n + tensors[i].numel() <= kBucketElems);
    b.last = i;
    std::vector<at::Tensor> parts;
    for (size_t k = b.first; k < b.last; ++k) parts.push_back(tensors[k].reshape({-1}));
    b.flat = {at::cat(parts)};
    b.work = impl_->group_for(b.flat[0].device()).allreduce(b.flat);  // the buckets travel concurrently
    buckets.push_back(std::move(b));
  }
  for (auto& b : buckets) {
    impl_->wait(b.work, step, t0);
    int64_t off = 0;
    for (size_t k = b.first; k < b.last; ++k) {
      const int64_t n = tensors[k].numel();
      tensors[k].copy_(b.flat[0].narrow(0, off, n).view(tensors[k].sizes()));
      off += n;
    }
  }
  impl_->add_time(t0);
}

void DistGroup::all_reduce_sum(double* values, size_t n, int64_t step) {
  impl_->reduce_doubles(values, n, step, c10d::ReduceOp::SUM);
}

void DistGroup::all_reduce_max(double* values, size_t n, int64_t step) {
  impl_->reduce_doubles(values, n, step, c10d::ReduceOp::MAX);
}

void DistGroup::barrier(const std::string& what, double timeout_s) {
  auto t0 = std::chrono::steady_clock::now();
  impl_->heartbeat(-1);
  c10d::BarrierOptions bo;
  if (timeout_s > 0) bo.timeout = to_ms(timeout_s);
  try {
    impl_->wait(impl_->pg->barrier(bo), -1, t0);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string(e.what()) + " (waiting for every rank: " + what + ")");
  }
  impl_->add_time(t0);
}

std::shared_ptr<DistGroup> init_process_group_from_env(double timeout_s) {
  std::lock_guard<std::mutex> lock(g_group_mutex);
  if (g_group) return g_group;
  DistOptions o = dist_options_from_env();
  if (o.world_size == 1) return nullptr;
  o.timeout_s = timeout_s;
  g_group = DistGroup::connect(o);
  return g_group;
}

std::shared_ptr<DistGroup> process_group() {
  std::lock_guard<std::mutex> lock(g_group_mutex);
  return g_group;
}

}  // namespace lorazip
