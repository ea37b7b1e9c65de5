// Helpers for the end-to-end tests: run the real `lorazip` binary through the shell (stdin from a
// file, stdout and stderr captured to files, so binary data passes untouched), per-test scratch
// directories, file I/O, and the shared tiny pipeline (tests/e2e/tiny.yaml) that the codec and
// export tests code with.
//
// The shared pipeline lives in <build>/tests/e2e-work/tiny. CTest runs every test case in its own
// process (and possibly several at once), so the first process that needs it runs
// `lorazip run tiny.yaml --work-dir <that dir>` under an exclusive file lock; the others wait and
// then find it ready. A marker names the binary and its shared libraries (size, mtime) and
// tiny.yaml's text it was made with; when either changes the directory is rebuilt from scratch.
#pragma once
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace e2e {

namespace fs = std::filesystem;

inline const std::string kBin = LORAZIP_BIN;
inline const fs::path kSource = LORAZIP_SOURCE_DIR;
inline const fs::path kWorkRoot = LORAZIP_E2E_WORK;
inline const fs::path kTinyYaml = kSource / "tests/e2e/tiny.yaml";

inline std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

inline void spill(const fs::path& p, const std::string& data) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!f) throw std::runtime_error("cannot write " + p.string());
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Files in a directory (names only, sorted).
inline std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// A scratch directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    fs::create_directories(kWorkRoot / "scratch");
    std::string tmpl = (kWorkRoot / "scratch" / "t-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed in " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

struct Result {
  int rc = -1;       // exit status (128 + signal when killed)
  std::string out;   // stdout bytes
  std::string err;   // stderr text
  double seconds = 0;
  std::string cmd;
  // For assertion messages.
  std::string describe() const {
    return "command: " + cmd + "\nexit " + std::to_string(rc) + "\n--- stderr ---\n" + err.substr(err.size() > 6000 ? err.size() - 6000 : 0);
  }
};

// Runs lorazip with `args` in directory `cwd`, stdin from `stdin_file` (default /dev/null).
inline Result lorazip(const std::vector<std::string>& args, const fs::path& cwd, const fs::path& stdin_file = "/dev/null") {
  static int counter = 0;
  fs::path out = cwd / (".e2e-stdout-" + std::to_string(::getpid()) + "-" + std::to_string(counter));
  fs::path err = cwd / (".e2e-stderr-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::string cmd = shell_quote(kBin);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  Result r;
  r.cmd = cmd;
  std::string full = "cd " + shell_quote(cwd.string()) + " && " + cmd + " < " + shell_quote(stdin_file.string()) + " > " +
                     shell_quote(out.string()) + " 2> " + shell_quote(err.string());
  auto t0 = std::chrono::steady_clock::now();
  int st = std::system(full.c_str());
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (st == -1) throw std::runtime_error("system() failed for " + cmd);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  if (fs::exists(out)) r.out = slurp(out);
  if (fs::exists(err)) r.err = slurp(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

// tiny.yaml with its relative data paths made absolute, so a copy written elsewhere reads the same
// corpus files under the same resolved paths (the stage cache hashes them).
inline std::string tiny_yaml_text_absolute() {
  std::string text = slurp(kTinyYaml);
  const std::string rel = "../../data/samples/";
  const std::string abs = (kSource / "data/samples").lexically_normal().string() + "/";
  for (size_t p = text.find(rel); p != std::string::npos; p = text.find(rel, p + abs.size())) text.replace(p, rel.size(), abs);
  return text;
}

// What the shared pipeline's result depends on: the program, the config, and the environment that
// picks training's BLAS kernels (training's floats, unlike coding's, follow the kernel), so a run
// under another OPENBLAS_CORETYPE builds its own pipeline instead of comparing with another's.
inline std::string marker_text() {
  // The binary and the shared library beside it that holds the program (a change of the library
  // alone leaves the binary as it was).
  auto stamp = [](const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return p.filename().string() + " absent\n";
    return p.filename().string() + " " + std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
           std::to_string(st.st_mtim.tv_nsec) + "\n";
  };
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(name) + (v ? "=" + std::string(v) : " unset") + "\n";
  };
  const fs::path bin(kBin);
  return stamp(bin) + stamp(bin.parent_path() / "liblorazip_full.so") + stamp(bin.parent_path() / "liblorazip_spm.so") +
         "config " + std::to_string(std::hash<std::string>{}(slurp(kTinyYaml))) + "\n" + env("OPENBLAS_CORETYPE") +
         env("LORAZIP_KEEP_BLAS");
}

// The shared pipeline's work directory, built on first use (see the top of this file). Fails the
// calling test (and returns an empty path) when `lorazip run` fails.
inline fs::path tiny_pipeline(Result* first_run = nullptr) {
  const fs::path dir = kWorkRoot / "tiny";
  fs::create_directories(kWorkRoot);
  int fd = ::open((kWorkRoot / ".tiny.lock").c_str(), O_CREAT | O_RDWR, 0644);
  if (fd < 0) throw std::runtime_error("cannot open the e2e lock file in " + kWorkRoot.string());
  ::flock(fd, LOCK_EX);
  const fs::path marker = kWorkRoot / "tiny.marker";
  const std::string want = marker_text();
  bool ready = fs::exists(marker) && slurp(marker) == want && fs::exists(dir / "report.json");
  Result r;
  if (!ready) {
    fs::remove(marker);
    fs::remove_all(dir);
    r = lorazip({"run", kTinyYaml.string(), "--work-dir", dir.string()}, kWorkRoot);
    if (r.rc == 0) spill(marker, want);
  } else {
    r.rc = 0;
  }
  ::flock(fd, LOCK_UN);
  ::close(fd);
  if (first_run) *first_run = r;
  EXPECT_EQ(r.rc, 0) << "the tiny pipeline failed\n" << r.describe();
  return r.rc == 0 ? dir : fs::path();
}

// Some text in the style of the corpus, long enough for several chunks of the tiny model.
inline std::string sample_text() {
  std::string s;
  for (int i = 1; i <= 12; ++i) {
    s += "Step " + std::to_string(i) + ": we factor the quadratic x^2 - " + std::to_string(i + 4) + "x + " + std::to_string(i * 4) +
         " = 0 and check each root by substitution.\n";
    s += "```python\ndef area(r):\n    return 3.14159 * r * r  # circle number " + std::to_string(i) + "\n```\n\n";
  }
  s += "Caf\xc3\xa9 na\xc3\xafve \xe2\x9c\x93 \xe2\x80\x94 done.\n";
  return s;
}

// Bytes that are not text: every byte value, runs of NULs, and invalid UTF-8 (a lone continuation
// byte, an overlong form, a truncated sequence, 0xFE/0xFF).
inline std::string binary_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s += static_cast<char>(i);
  s += std::string(40, '\0');
  s += "\x80\xbf\xc0\xaf\xe2\x82\xfe\xff\xed\xa0\x80";
  s += std::string("text\0with\0nuls", 14);
  for (int i = 0; i < 300; ++i) s += static_cast<char>((i * 131 + 7) & 0xff);
  s += '\xc3';  // a truncated two-byte sequence at the very end
  return s;
}

}  // namespace e2e
