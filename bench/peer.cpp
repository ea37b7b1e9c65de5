// The peer benchmark's runner: a child process with piped stdout / stderr (fork + execv, the
// parent's environment), and the JSON of bench/peer_llamacpp.py into PeerFigures.
#include "bench/peer.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string_view>

namespace lorazip {

namespace {

constexpr int kStderrTailLines = 20;  // of the child's stderr, in error messages

// The last `n` non-empty lines of `text`, each indented, for an error message.
std::string tail_lines(const std::string& text, int n) {
  std::vector<std::string> lines;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t nl = text.find('\n', begin);
    std::string line = text.substr(begin, nl == std::string::npos ? std::string::npos : nl - begin);
    if (line.find_first_not_of(" \r\t") != std::string::npos) lines.push_back(line);
    if (nl == std::string::npos) break;
    begin = nl + 1;
  }
  if (lines.empty()) return "  (nothing)";
  std::string out;
  for (size_t i = lines.size() > static_cast<size_t>(n) ? lines.size() - n : 0; i < lines.size(); ++i)
    out += (out.empty() ? "  " : "\n  ") + lines[i];
  return out;
}

std::string join_command(const std::vector<std::string>& argv) {
  std::string cmd;
  for (const auto& a : argv) {
    if (!cmd.empty()) cmd += ' ';
    bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$") == std::string::npos;
    cmd += plain ? a : "'" + a + "'";
  }
  return cmd;
}

// argv[0] as execv needs it: itself when it names a path, else the first executable in PATH.
// Resolved before fork, because a forked child of a threaded program may only make
// async-signal-safe calls (execvp may allocate).
std::string resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  throw std::runtime_error("cannot start " + name + ": not found in PATH");
}

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

template <typename T>
T field(const nlohmann::json& j, const char* key, const char* where) {
  auto it = j.find(key);
  if (it == j.end()) throw std::runtime_error(std::string(where) + ": field '" + key + "' is missing");
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw std::runtime_error(std::string(where) + ": field '" + key + "' has the wrong type (" +
                             it->type_name() + ")");
  }
}

LlamaZipFigures parse_llama_zip(const nlohmann::json& j) {
  const char* where = "peer JSON, llama_zip";
  if (!j.is_object()) throw std::runtime_error(std::string(where) + ": not an object");
  LlamaZipFigures z;
  z.threads = field<int>(j, "threads", where);
  z.n_ctx = field<int64_t>(j, "n_ctx", where);
  z.tokens = field<int64_t>(j, "tokens", where);
  z.load_s = field<double>(j, "load_s", where);
  z.compress_s = field<double>(j, "compress_s", where);
  z.decompress_s = field<double>(j, "decompress_s", where);
  z.bytes_in = field<int64_t>(j, "bytes_in", where);
  z.bytes_out = field<int64_t>(j, "bytes_out", where);
  z.round_trip_exact = field<bool>(j, "round_trip_exact", where);
  return z;
}

}  // namespace

PeerDocuments::PeerDocuments(const std::vector<std::string>& texts) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/lorazip-peer-docs.XXXXXX";
  if (!mkdtemp(tmpl.data()))
    throw std::runtime_error("cannot create a folder like " + tmpl + ": " + std::strerror(errno));
  dir_ = tmpl;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::string path = dir_ + "/doc-" + std::to_string(i) + ".txt";
    std::ofstream out(path, std::ios::binary);
    out.write(texts[i].data(), static_cast<std::streamsize>(texts[i].size()));
    out.close();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
      throw std::runtime_error("cannot write " + path + " (" + std::to_string(texts[i].size()) + " bytes)");
    }
    paths_.push_back(path);
  }
}

PeerDocuments::~PeerDocuments() {
  std::error_code ec;  // a destructor does not throw; a folder left in TMPDIR is harmless
  std::filesystem::remove_all(dir_, ec);
}

std::string default_peer_script() { return std::string(LORAZIP_SOURCE_DIR) + "/bench/peer_llamacpp.py"; }

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = strsignal(sig);
    return "was killed by signal " + std::to_string(sig) + " (" + (name ? name : "?") + ")";
  }
  return "ended with wait status " + std::to_string(status);
}

ProcessOutput run_process(const std::vector<std::string>& argv) {
  if (argv.empty()) throw std::invalid_argument("run_process: empty argv");
  std::string program = resolve_program(argv[0]);
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  // out / err: the child's stdout and stderr (dup2 gives it copies without close-on-exec);
  // exec_err carries errno only when execv fails and reads EOF once it succeeds. All close-on-exec,
  // so a program started by another thread meanwhile holds no write end that would keep ours open.
  int out[2] = {-1, -1}, err[2] = {-1, -1}, exec_err[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 || pipe2(exec_err, O_CLOEXEC) != 0) {
    int e = errno;
    for (int* p : {out, err, exec_err}) close_fd(p[0]), close_fd(p[1]);
    throw std::runtime_error("cannot start " + argv[0] + ": pipe() failed (" + std::strerror(e) + ")");
  }
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    for (int* p : {out, err, exec_err}) close_fd(p[0]), close_fd(p[1]);
    throw std::runtime_error("cannot start " + argv[0] + ": fork() failed (" + std::strerror(e) + ")");
  }
  if (pid == 0) {  // only async-signal-safe calls from here
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    close(out[0]), close(out[1]), close(err[0]), close(err[1]), close(exec_err[0]);
    execv(program.c_str(), cargv.data());
    int e = errno;
    ssize_t ignored = write(exec_err[1], &e, sizeof e);
    (void)ignored;
    _exit(127);
  }
  close_fd(out[1]);
  close_fd(err[1]);
  close_fd(exec_err[1]);

  int exec_errno = 0;
  ssize_t got;
  do got = read(exec_err[0], &exec_errno, sizeof exec_errno);
  while (got < 0 && errno == EINTR);
  close_fd(exec_err[0]);

  ProcessOutput result;
  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    close_fd(out[0]);
    close_fd(err[0]);
    while (waitpid(pid, &result.status, 0) < 0 && errno == EINTR) {}
    throw std::runtime_error("cannot start " + program + ": " + std::strerror(exec_errno));
  }

  // Both pipes drained as data comes: a child that fills one while we block on the other would
  // otherwise wait forever.
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;  // poll ignores negative descriptors
        --open_fds;
      }
    }
  }
  for (auto& p : fds) if (p.fd >= 0) close(p.fd);
  while (waitpid(pid, &result.status, 0) < 0 && errno == EINTR) {}
  return result;
}

PeerFigures parse_peer_figures(const std::string& json_text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(std::string("peer JSON does not parse: ") + e.what());
  }
  if (!j.is_object()) throw std::runtime_error("peer JSON is not an object");
  const char* where = "peer JSON";
  PeerFigures f;
  f.llama_cpp_python = field<std::string>(j, "llama_cpp_python", where);
  f.system_info = field<std::string>(j, "system_info", where);
  f.model = field<std::string>(j, "model", where);
  f.threads = field<int>(j, "threads", where);
  f.files = field<int64_t>(j, "files", where);
  f.bytes = field<int64_t>(j, "bytes", where);
  f.doc_tokens = field<int64_t>(j, "doc_tokens", where);
  f.pp_max = field<int64_t>(j, "pp_max", where);
  f.tg_max = field<int64_t>(j, "tg_max", where);
  f.repeat = field<int>(j, "repeat", where);
  f.load_s = field<double>(j, "load_s", where);
  f.pp_tokens = field<int64_t>(j, "pp_tokens", where);
  f.pp_s = field<double>(j, "pp_s", where);
  f.pp_tok_s = field<double>(j, "pp_tok_s", where);
  f.tg_tokens = field<int64_t>(j, "tg_tokens", where);
  f.tg_s = field<double>(j, "tg_s", where);
  f.tg_tok_s = field<double>(j, "tg_tok_s", where);
  f.peak_rss_llamacpp_mib = field<double>(j, "peak_rss_llamacpp_mib", where);
  f.peak_rss_mib = field<double>(j, "peak_rss_mib", where);
  auto omp = j.find("omp_num_threads_inherited");
  if (omp == j.end()) throw std::runtime_error("peer JSON: field 'omp_num_threads_inherited' is missing (null when unset)");
  if (!omp->is_null()) f.omp_num_threads_inherited = field<std::string>(j, "omp_num_threads_inherited", where);
  f.loadavg_1m_start = field<double>(j, "loadavg_1m_start", where);
  f.loadavg_1m_end = field<double>(j, "loadavg_1m_end", where);
  auto z = j.find("llama_zip");
  if (z == j.end()) throw std::runtime_error("peer JSON: field 'llama_zip' is missing (null when not run)");
  if (!z->is_null()) f.llama_zip = parse_llama_zip(*z);
  size_t first = json_text.find_first_not_of(" \n\r\t"), last = json_text.find_last_not_of(" \n\r\t");
  f.json = json_text.substr(first, last + 1 - first);
  return f;
}

PeerFigures run_peer_llamacpp(const PeerRequest& request) {
  if (request.python.empty()) throw std::invalid_argument("peer benchmark: no Python interpreter given (scripts/peer_venv.sh prints one)");
  if (request.script.empty()) throw std::invalid_argument("peer benchmark: no script given (default_peer_script())");
  if (request.gguf.empty()) throw std::invalid_argument("peer benchmark: no GGUF model given");
  if (request.threads < 1) throw std::invalid_argument("peer benchmark: threads must be at least 1, got " + std::to_string(request.threads));
  if (request.repeat < 1) throw std::invalid_argument("peer benchmark: repeat must be at least 1, got " + std::to_string(request.repeat));
  if (request.files.empty()) throw std::invalid_argument("peer benchmark: no documents given");

  std::vector<std::string> argv = {request.python, request.script, request.gguf, std::to_string(request.threads),
                                   "--repeat", std::to_string(request.repeat)};
  if (!request.llama_zip_dir.empty()) {
    argv.push_back("--llama-zip");
    argv.push_back(request.llama_zip_dir);
  }
  // "--" keeps a document named like an option a document.
  argv.push_back("--");
  argv.insert(argv.end(), request.files.begin(), request.files.end());
  std::string cmd = join_command(argv);

  ProcessOutput p = run_process(argv);
  if (!WIFEXITED(p.status) || WEXITSTATUS(p.status) != 0) {
    std::string hint;
    if (WIFSIGNALED(p.status) && (WTERMSIG(p.status) == SIGSEGV || WTERMSIG(p.status) == SIGILL))
      hint = "\n(a llama-cpp-python built for another CPU, or with AMX, dies like this: "
             "rebuild it with bash scripts/peer_venv.sh --make)";
    throw std::runtime_error("peer benchmark `" + cmd + "` " + describe_status(p.status) +
                             "; the end of its stderr:\n" + tail_lines(p.err, kStderrTailLines) + hint);
  }
  try {
    return parse_peer_figures(p.out);
  } catch (const std::runtime_error& e) {
    std::string shown = p.out.substr(0, 300);
    throw std::runtime_error("peer benchmark `" + cmd + "` printed no valid figures: " + e.what() +
                             "\nits stdout began: " + (shown.empty() ? "(nothing)" : shown) +
                             "\nthe end of its stderr:\n" + tail_lines(p.err, kStderrTailLines));
  }
}

std::optional<std::string> find_peer_python(std::string* why) {
  std::vector<std::string> argv = {"bash", std::string(LORAZIP_SOURCE_DIR) + "/scripts/peer_venv.sh"};
  ProcessOutput p = run_process(argv);
  if (WIFEXITED(p.status) && WEXITSTATUS(p.status) == 77) {
    if (why) *why = p.err.substr(0, p.err.find_last_not_of(" \n") + 1);
    return std::nullopt;
  }
  if (!WIFEXITED(p.status) || WEXITSTATUS(p.status) != 0)
    throw std::runtime_error("`" + join_command(argv) + "` " + describe_status(p.status) +
                             "; the end of its stderr:\n" + tail_lines(p.err, kStderrTailLines));
  size_t end = p.out.find_last_not_of(" \n\r\t");
  if (end == std::string::npos)
    throw std::runtime_error("`" + join_command(argv) + "` printed no interpreter path");
  return p.out.substr(0, end + 1);
}

std::string format_peer_table(const std::vector<PeerFigures>& runs) {
  std::string s;
  char line[512];
  std::snprintf(line, sizeof line, "%-7s %9s %7s %9s %9s %8s | %-9s %7s %10s %12s %9s %9s %8s %5s %8s\n", "threads",
                "load avg", "load s", "pp tok/s", "tg tok/s", "RSS MiB", "llama-zip", "load s", "compress s",
                "decompress s", "bytes in", "bytes out", "bits/B", "exact", "RSS MiB");
  s += line;
  for (const auto& r : runs) {
    char load_avg[32];
    std::snprintf(load_avg, sizeof load_avg, "%.1f-%.1f", r.loadavg_1m_start, r.loadavg_1m_end);
    std::snprintf(line, sizeof line, "%-7d %9s %7.2f %9.1f %9.1f %8.1f | ", r.threads, load_avg, r.load_s,
                  r.pp_tok_s, r.tg_tok_s, r.peak_rss_llamacpp_mib);
    s += line;
    if (r.llama_zip) {
      const auto& z = *r.llama_zip;
      double bits_per_byte = z.bytes_in > 0 ? 8.0 * static_cast<double>(z.bytes_out) / static_cast<double>(z.bytes_in) : 0.0;
      std::snprintf(line, sizeof line, "%-9s %7.2f %10.2f %12.2f %9lld %9lld %8.3f %5s %8.1f\n", "", z.load_s,
                    z.compress_s, z.decompress_s, static_cast<long long>(z.bytes_in),
                    static_cast<long long>(z.bytes_out), bits_per_byte, z.round_trip_exact ? "yes" : "NO",
                    r.peak_rss_mib);
    } else {
      std::snprintf(line, sizeof line, "%-9s\n", "(not run)");
    }
    s += line;
  }
  return s;
}

}  // namespace lorazip
