// Process-wide tuning of glibc's allocator for training: keep freed tensor memory in the heap
// instead of handing it back to the kernel after every step, so the next step does not pay the
// page faults of mapping and zeroing the same memory again (docs/training.md, "Speed").
#pragma once

namespace lorazip {

// Raises glibc's mmap threshold to its largest allowed value (32 MiB on 64-bit) and switches off
// trimming of the heap's top, so allocations up to 32 MiB are reused from the heap across steps.
// The peak resident memory stays what the largest step needs; memory freed after a peak is kept
// by the process until it exits. Call once, early in main(), before threads start.
// LORAZIP_MALLOC_TUNING=0 in the environment leaves glibc's defaults (for A/B measurements).
// Returns whether the tuning is in force (false on other C libraries or when switched off).
bool tune_allocator_for_training();

}  // namespace lorazip
