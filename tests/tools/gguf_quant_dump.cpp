// Helper program for scripts/check_gguf_quant.sh (torch-free): writes DIR/kinds.gguf holding, for
// every engine weight kind, a tensor quantized by lorazip from seeded values ("q.<KIND>", 512 x 4),
// and for every quantized kind a tensor of seeded random block bytes ("raw.<KIND>", 512 x 2; f16
// fields kept finite) whose codes and scales reach every bit pattern the quantizer may not;
// then reads the file back with GgufFile and writes each tensor's dequantization by lorazip as
// raw little-endian float32 to DIR/<tensor name>.f32.
//   gguf_quant_dump DIR
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "codec/engine/blocks.h"
#include "model/gguf.h"
#include "model/gguf_quant.h"

using namespace lorazip;
using engine::WeightKind;

namespace {

// splitmix64, so that the values are the same on every machine.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * 0x1p-24f * 2.0f - 1.0f; }  // [-1, 1)
};

// Four rows of 512 with different shapes: uniform, weights-like, offset, and blocks of very
// different scales (down to f16-subnormal scales).
std::vector<float> seeded_values(uint64_t seed) {
  Rng rng{seed};
  std::vector<float> x(512 * 4);
  for (int i = 0; i < 512; ++i) {
    x[i] = rng.uniform();
    x[512 + i] = 0.02f * (rng.uniform() + rng.uniform() + rng.uniform());
    x[1024 + i] = 5.0f + rng.uniform();
    const float scales[4] = {300.0f, 1e-6f, 0.5f, 2e-3f};
    x[1536 + i] = scales[(i / 32) % 4] * rng.uniform();
  }
  return x;
}

// Random blocks of `kind` for n values, with every f16 field's exponent kept below 31 (finite).
std::string random_blocks(WeightKind kind, int64_t n, uint64_t seed) {
  Rng rng{seed};
  const engine::KindTraits& t = engine::kind_traits(kind);
  std::string b(static_cast<size_t>(engine::row_bytes(kind, n)), '\0');
  for (char& c : b) c = static_cast<char>(rng.next() >> 56);
  std::vector<size_t> f16_fields;  // byte offsets of f16 fields within a block
  switch (kind) {
    case WeightKind::Q8_0:
    case WeightKind::Q4_0: f16_fields = {0}; break;
    case WeightKind::Q4_1:
    case WeightKind::Q4_K:
    case WeightKind::Q5_K: f16_fields = {0, 2}; break;
    case WeightKind::Q6_K: f16_fields = {208}; break;
    default: break;
  }
  for (size_t at = 0; at < b.size(); at += t.block_bytes)
    for (size_t f : f16_fields) {
      uint8_t& hi = reinterpret_cast<uint8_t&>(b[at + f + 1]);
      if ((hi & 0x7C) == 0x7C) hi = static_cast<uint8_t>(hi & ~0x40);  // exponent 31 -> 15
    }
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gguf_quant_dump DIR  (writes DIR/kinds.gguf and DIR/<tensor>.f32)\n");
    return 2;
  }
  const std::string dir = argv[1];
  try {
    GgufWriter w;
    w.add("general.architecture", GgufValue::of_string("lorazip-quant-check"));
    const std::vector<float> x = seeded_values(20240611);
    for (int k = 0; k < engine::kWeightKinds; ++k) {
      const WeightKind kind = static_cast<WeightKind>(k);
      add_quantized_tensor(w, std::string("q.") + engine::kind_name(kind), {512, 4}, kind, x.data());
    }
    for (int k = 0; k < engine::kWeightKinds; ++k) {
      const WeightKind kind = static_cast<WeightKind>(k);
      if (!engine::kind_traits(kind).quantized) continue;
      w.add_tensor(std::string("raw.") + engine::kind_name(kind), {512, 2}, engine::kind_traits(kind).ggml_type,
                   random_blocks(kind, 1024, 777 + static_cast<uint64_t>(k)));
    }
    const std::string path = dir + "/kinds.gguf";
    w.write(path);

    const GgufFile f = GgufFile::open(path);
    for (const GgufTensorInfo& t : f.tensors()) {
      const std::vector<float> v = f.dequantize(t);
      const std::string out = dir + "/" + t.name + ".f32";
      std::FILE* fp = std::fopen(out.c_str(), "wb");
      if (!fp) throw std::runtime_error("cannot create " + out);
      const size_t wrote = std::fwrite(v.data(), sizeof(float), v.size(), fp);
      if (std::fclose(fp) != 0 || wrote != v.size()) throw std::runtime_error("cannot write " + out);
    }
    std::printf("%s: %zu tensors\n", path.c_str(), f.tensors().size());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gguf_quant_dump: %s\n", e.what());
    return 1;
  }
  return 0;
}
