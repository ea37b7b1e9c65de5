// compress's verify step (codec/verify.h) with decoders that give back the wrong text or fail:
// it throws naming the file and never delivers, so nothing is written and the input is kept (a
// correct coder never fails the check, so the lorazip program cannot show this path).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "codec/verify.h"

namespace fs = std::filesystem;
using lorazip::verify_then_deliver;

namespace {

class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "lorazip_test_verify_XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  fs::path operator/(const std::string& name) const { return path_ / name; }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  fs::path path_;
};

void spill(const fs::path& p, const std::string& data) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << data;
  if (!f) throw std::runtime_error("cannot write " + p.string());
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

using Decoder = std::function<std::string(const std::string&)>;

}  // namespace

// The delivery here does what cmd_compress's does with --rm: write the output, remove the input.
TEST(VerifyThenDeliver, MismatchWritesNothingAndKeepsTheInput) {
  ScratchDir t;
  const std::string text = "the input text";
  const fs::path in = t / "in.txt", out = t / "in.txt.lz";
  spill(in, text);
  const std::vector<std::string> before = t.listing();
  auto deliver = [&] {
    spill(out, "packed");
    fs::remove(in);
  };
  const std::vector<Decoder> wrong{[&](const std::string&) { return text + '\0'; },                 // one byte longer
                                   [&](const std::string&) { return std::string("THE input text"); },  // same length
                                   [&](const std::string&) { return std::string(); }};
  for (bool remove_input : {false, true}) {
    for (const Decoder& decode : wrong) {
      try {
        verify_then_deliver(text, "packed", decode, deliver, "in.txt", remove_input);
        ADD_FAILURE() << "a wrong decoding passed verification";
      } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()),
                  std::string("in.txt: verification failed: the compressed file does not decode to the input; nothing written") +
                      (remove_input ? ", input kept" : ""));
      }
      EXPECT_EQ(t.listing(), before) << "a failed verification left a file behind or removed the input";
      EXPECT_EQ(slurp(in), text);
    }
  }
}

TEST(VerifyThenDeliver, DecoderErrorPassesThroughAndWritesNothing) {
  ScratchDir t;
  const fs::path in = t / "in.txt", out = t / "in.txt.lz";
  spill(in, "text");
  bool delivered = false;
  Decoder failing = [](const std::string&) -> std::string { throw std::runtime_error("in.txt (verify): decoded bytes fail the seal"); };
  try {
    verify_then_deliver("text", "packed", failing, [&] { delivered = true; }, "in.txt", true);
    ADD_FAILURE() << "a decoder error was swallowed";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "in.txt (verify): decoded bytes fail the seal");
  }
  EXPECT_FALSE(delivered);
}

TEST(VerifyThenDeliver, RightDecodingOfThePackedBytesDelivers) {
  std::string decoded_from;
  int delivered = 0;
  Decoder right = [&](const std::string& packed) {
    decoded_from = packed;
    return std::string("text");
  };
  verify_then_deliver("text", "packed", right, [&] { ++delivered; }, "in.txt", true);
  EXPECT_EQ(decoded_from, "packed") << "the verify step decoded something other than the bytes it delivers";
  EXPECT_EQ(delivered, 1);
}
