// Random weights as a GGUF stores them, for tests: blocks of every engine kind with codes drawn
// from a seeded generator and scales chosen so the weights have a given magnitude (the minimum of a
// Q4_1 block near -7.5 d, as centred weights give). Shared by engine_hash (which cross-compiles,
// so this header uses the engine's blocks.h alone) and the golden files.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "codec/engine/blocks.h"

namespace tiny_blocks {

using namespace lorazip::engine;

// splitmix64 with a range helper: the same numbers on every machine (std:: distributions are not).
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int64_t in(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1)); }
};

inline void put16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v);
  b[at + 1] = static_cast<uint8_t>(v >> 8);
}

// A random row-major [rows, cols] tensor of `kind`, as a GGUF would store it, with weights of
// magnitude about `mag`.
template <class Rng>
std::vector<uint8_t> random_blocks(Rng& rng, WeightKind kind, int64_t rows, int64_t cols, float mag) {
  const uint64_t rb = row_bytes(kind, cols);
  std::vector<uint8_t> out(static_cast<size_t>(rb * static_cast<uint64_t>(rows)));
  const KindTraits& t = kind_traits(kind);
  auto scale = [&](float lo, float hi) {
    return f32_to_f16(lo + (hi - lo) * static_cast<float>(rng.in(0, 1000)) / 1000.0f);
  };
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = out.data() + r * rb;
    if (!t.quantized) {
      for (int64_t i = 0; i < cols; ++i) {
        const float v = mag * static_cast<float>(rng.in(-64, 64)) / 64.0f;
        if (kind == WeightKind::F32) std::memcpy(row + 4 * i, &v, 4);
        else {
          const uint16_t h = kind == WeightKind::F16 ? f32_to_f16(v) : f32_to_bf16(v);
          row[2 * i] = static_cast<uint8_t>(h), row[2 * i + 1] = static_cast<uint8_t>(h >> 8);
        }
      }
      continue;
    }
    for (int64_t b = 0; b < cols / t.block; ++b) {
      std::vector<uint8_t> blk(t.block_bytes);
      for (auto& x : blk) x = static_cast<uint8_t>(rng.in(0, 255));
      switch (kind) {
        case WeightKind::Q8_0: put16(blk, 0, scale(mag / 254, mag / 64)); break;
        case WeightKind::Q4_0: put16(blk, 0, scale(mag / 16, mag / 4)); break;
        case WeightKind::Q4_1: {  // a minimum near -7.5 d, as a block of centred weights has
          const uint16_t d = scale(mag / 16, mag / 4);
          put16(blk, 0, d);
          put16(blk, 2, f32_to_f16(-f16_to_f32(d) * static_cast<float>(rng.in(60, 90)) / 10.0f));
          break;
        }
        case WeightKind::Q4_K:
        case WeightKind::Q5_K: {
          const float span = kind == WeightKind::Q4_K ? 15.0f : 31.0f;
          put16(blk, 0, scale(mag / (63 * span), 2 * mag / (63 * span)));
          put16(blk, 2, scale(mag / 63, mag / 32));
          break;
        }
        case WeightKind::Q6_K: put16(blk, 208, scale(mag / (128 * 32), 2 * mag / (128 * 32))); break;
        default: break;
      }
      std::memcpy(row + b * t.block_bytes, blk.data(), blk.size());
    }
  }
  return out;
}

}  // namespace tiny_blocks
