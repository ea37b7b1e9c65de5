/* timed_exec OUT PROGRAM ARG...: runs PROGRAM with its standard output to the file OUT and prints
 * "seconds <s> max_rss_kb <kB> status <wait status>". A benchmark holding a model in memory runs its
 * children through this small program: a child forked straight from the benchmark starts with the
 * benchmark's resident pages, which getrusage's peak counts; a child forked from this one does not. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: timed_exec OUT PROGRAM [ARG...]\n");
    return 2;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const pid_t pid = fork();
  if (pid < 0) {
    perror("timed_exec: fork");
    return 2;
  }
  if (pid == 0) {
    const int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
      perror(argv[1]);
      _exit(126);
    }
    dup2(fd, STDOUT_FILENO);
    close(fd);
    execv(argv[2], argv + 2);
    perror(argv[2]);
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) {
    perror("timed_exec: wait4");
    return 2;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  printf("seconds %.6f max_rss_kb %ld status %d\n", s, ru.ru_maxrss, status);
  return 0;
}
