// Helper program for scripts/check_gguf_interop.py: writes every tensor of a GGUF file,
// dequantized to float32 by lorazip, to stdout in file order (raw little-endian floats, nothing
// else), so that another implementation can compare value by value.
//   gguf_dequant_dump FILE > values.f32
#include <cstdio>
#include <exception>
#include <vector>

#include "model/gguf.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gguf_dequant_dump FILE.gguf > values.f32\n");
    return 2;
  }
  try {
    lorazip::GgufFile f = lorazip::GgufFile::open(argv[1]);
    std::vector<float> v;
    for (const auto& t : f.tensors()) {
      v.resize(static_cast<size_t>(t.numel()));
      f.dequantize_into(t, v.data());
      if (std::fwrite(v.data(), sizeof(float), v.size(), stdout) != v.size()) {
        std::fprintf(stderr, "gguf_dequant_dump: write failed\n");
        return 1;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gguf_dequant_dump: %s\n", e.what());
    return 1;
  }
  return 0;
}
