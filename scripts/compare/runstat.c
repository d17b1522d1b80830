/*
 * runstat: run a command and report its wall time, CPU time and peak RSS.
 *
 *   runstat OUT_FILE PROGRAM [ARGS...]
 *
 * Forks, execs PROGRAM (an absolute path, or found on PATH), waits for it with
 * wait4 and appends one line to OUT_FILE:
 *
 *   <exit code> <wall seconds> <user+sys CPU seconds> <peak RSS KiB> <start, Unix time> <last argument>
 *
 * then exits with the command's exit code (128 + signal when killed). The line
 * is written with one write(2) on an O_APPEND descriptor, so concurrent runs
 * can share a file (it serves as the timing shim of archive_command).
 *
 * Why a C helper: on Linux a process's ru_maxrss starts at the RSS of whatever
 * forked it (the high-water mark of the address space it replaced at exec), so
 * a command started straight from a Python driver would report the driver's
 * ~50 MiB. Started from this small program it reports its own peak. wait4
 * reports the command together with the descendants it waited for (CPU
 * summed, RSS the largest single process). SIGTERM and SIGINT are forwarded.
 *
 * Build: cc -O2 -o runstat runstat.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile pid_t child = 0;

static void forward(int sig)
{
    if (child > 0)
        kill(child, sig);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: runstat OUT_FILE PROGRAM [ARGS...]\n");
        return 125;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    struct timespec t0, t1, start;
    clock_gettime(CLOCK_REALTIME, &start);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("runstat: fork");
        return 125;
    }
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        execvp(argv[2], argv + 2);
        fprintf(stderr, "runstat: cannot run %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    child = pid;
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("runstat: wait4");
            return 125;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    char line[4096];
    int n = snprintf(line, sizeof line, "%d %.6f %.6f %ld %lld.%06ld %s\n", code, wall, cpu,
                     ru.ru_maxrss, (long long)start.tv_sec, start.tv_nsec / 1000, argv[argc - 1]);
    if (n > (int)sizeof line - 1) {
        n = (int)sizeof line - 1;
        line[n - 1] = '\n';
    }
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd >= 0) {
        if (write(fd, line, (size_t)n) != n)
            perror("runstat: write");
        close(fd);
    } else {
        perror("runstat: open");
    }
    return code;
}
