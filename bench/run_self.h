// Benchmarks measure peak memory in a fresh process: they run themselves again (fork + exec of
// /proc/self/exe, so VmHWM starts from nothing) with other arguments and read the child's stdout.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace lorazip {

// Runs this program with `args` (args[0] is argv[0]) and returns what it printed; throws
// std::runtime_error naming `what` when it cannot start or exits non-zero.
inline std::string run_self(std::vector<std::string> args, const std::string& what) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error(what + ": pipe() failed");
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(what + ": fork() failed");
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(what + " failed (status " + std::to_string(status) + "); its output: " + out);
  return out;
}

}  // namespace lorazip
