// Data-parallel training on PyTorch's own distributed engine (c10d): a TCPStore for the rendezvous
// and ProcessGroupGloo for the collectives, started the way `torchrun` starts workers (RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), so `torchrun --no-python lorazip ...` or any
// launcher setting those variables runs lorazip on N processes. The trainer (train/train.h) uses a
// DistGroup through RunOptions::dist. Torch-free header (tensors are forward-declared).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace lorazip {

struct DistOptions {
  int rank = 0;                 // RANK: 0..world_size-1
  int world_size = 1;           // WORLD_SIZE: processes in the job
  int local_rank = 0;           // LOCAL_RANK: index on this machine (informational on CPU)
  std::string master_addr = "127.0.0.1";  // MASTER_ADDR: host of rank 0's (or torchrun's) TCPStore
  int master_port = 29500;      // MASTER_PORT
  // TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent already serves the store at the master
  // address, so rank 0 connects to it as a client instead of starting one.
  bool agent_store = false;
  // Seconds a collective (or the rendezvous) may wait for the other ranks before it fails with an
  // error naming the ranks that did not arrive. > 0.
  double timeout_s = 300;
};

// The launcher's variables. world_size = 1 (and nothing else read) when WORLD_SIZE is unset.
// std::invalid_argument naming the variable when one is malformed, out of range or missing.
DistOptions dist_options_from_env();

// One process's membership in the job: a c10d TCPStore and a Gloo process group.
class DistGroup {
 public:
  // Rendezvous with the other ranks (blocks until all have joined or timeout_s has passed).
  // std::invalid_argument for inconsistent options; std::runtime_error naming MASTER_ADDR:MASTER_PORT
  // when the rendezvous fails.
  static std::shared_ptr<DistGroup> connect(const DistOptions& o);
  ~DistGroup();
  DistGroup(const DistGroup&) = delete;
  DistGroup& operator=(const DistGroup&) = delete;

  int rank() const;
  int world_size() const;
  const DistOptions& options() const;

  // Sums float32 tensors over all ranks, in place, in flat buckets of at most 25 MiB (every rank
  // must pass tensors of the same shapes in the same order). Every rank ends with the same bits.
  // CPU tensors go through Gloo; CUDA tensors (CUDA builds only) through NCCL, started on first use.
  // `step` only labels errors. std::runtime_error when a peer died or did not arrive within the
  // timeout; the message names the rank(s) that fell behind, as far as the store can tell.
  void all_reduce_sum(std::vector<at::Tensor>& tensors, int64_t step);
  // The same for a few doubles (losses, counts), summed in float64.
  void all_reduce_sum(double* values, size_t n, int64_t step);
  // The same with the maximum instead of the sum.
  void all_reduce_max(double* values, size_t n, int64_t step);
  // Waits for every rank; `what` names the place in errors. timeout_s > 0 replaces the group's
  // timeout for this wait (rank 0 preparing data alone may take longer than a training step).
  void barrier(const std::string& what, double timeout_s = 0);

  // Seconds spent in collectives so far (waiting for slower ranks included).
  double comm_seconds() const;

 private:
  struct Impl;
  explicit DistGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The process's group: created from the environment by init_process_group_from_env (the program
// calls it once at start), null when the process runs alone (WORLD_SIZE unset or 1).
std::shared_ptr<DistGroup> init_process_group_from_env(double timeout_s);
std::shared_ptr<DistGroup> process_group();

}  // namespace lorazip
