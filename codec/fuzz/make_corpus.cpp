// Writes the fuzz target's seed corpus (and the container golden files): one valid container
// per file, from codec/fuzz/seeds.h. Usage: make_fuzz_corpus <output-dir>
#include <cstdio>
#include <exception>
#include <string>

#include "codec/fuzz/seeds.h"
#include "common/fs.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output-dir>\n", argv[0]);
    return 2;
  }
  try {
    for (const auto& [file, c] : lorazip::fuzz_seeds::seed_containers()) {
      const std::string path = std::string(argv[1]) + "/" + file;
      const std::string bytes = c.serialize();
      lorazip::write_file_atomic(path, bytes);
      std::printf("%s  %zu bytes, %zu chunks\n", path.c_str(), bytes.size(), c.chunks.size());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_fuzz_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
