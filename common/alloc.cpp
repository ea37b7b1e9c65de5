// glibc allocator tuning for lorazip's training processes; see alloc.h for what it changes and why.
#include "common/alloc.h"

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace lorazip {

bool tune_allocator_for_training() {
  const char* env = std::getenv("LORAZIP_MALLOC_TUNING");
  if (env != nullptr && std::strcmp(env, "0") == 0) return false;
#if defined(__GLIBC__)
  // glibc refuses thresholds above HEAP_MAX_SIZE / 2, which is 32 MiB on 64-bit builds.
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1;
  // -1 (as a size) disables trimming of the heap's top; a large top pad keeps growth cheap.
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, -1) == 1;
  const bool pad_ok = mallopt(M_TOP_PAD, 64 * 1024 * 1024) == 1;
  return mmap_ok && trim_ok && pad_ok;
#else
  return false;
#endif
}

}  // namespace lorazip
