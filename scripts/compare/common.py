"""Helpers shared by the comparison drivers (scripts/compare.sh).

Processes are started with posix_spawn and waited for with wait4, which gives
each one's exact CPU time and peak RSS. On Linux wait4 reports RUSAGE_BOTH:
the process itself plus every descendant it waited for, and ru_maxrss is the
largest single process among them. The driver makes itself a child subreaper,
so that daemons detached by the tools (pgBackRest's archive-push:async and
archive-get:async processes) are re-parented to it and can be waited for and
accounted too.
"""

import ctypes
import math
import os
import signal
import statistics
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def log(prefix, msg):
    print(f"{prefix}: {msg}", file=sys.stderr, flush=True)


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


class Usage:
    """CPU seconds and peak RSS (KiB) of one or more processes."""

    def __init__(self, cpu=0.0, maxrss=0, procs=0):
        self.cpu, self.maxrss, self.procs = cpu, maxrss, procs

    def add(self, ru):
        self.cpu += ru.ru_utime + ru.ru_stime
        self.maxrss = max(self.maxrss, ru.ru_maxrss)
        self.procs += 1
        return self

    def merge(self, other):
        self.cpu += other.cpu
        self.maxrss = max(self.maxrss, other.maxrss)
        self.procs += other.procs
        return self


def spawn(argv, env=None, stdout=os.devnull, stderr=os.devnull):
    """Starts argv[0] (an absolute path); returns the pid."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, stdout, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, stderr, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
    ]
    return os.posix_spawn(argv[0], argv, os.environ if env is None else env, file_actions=actions)


RUNSTAT = os.environ.get("RUNSTAT", "")
_seq = [0]


def _result_file():
    _seq[0] += 1
    return os.path.join(os.environ.get("WORK", "/tmp"), f".runstat.{os.getpid()}.{_seq[0]}")


def _read_result(path):
    with open(path) as f:
        code, wall, cpu, rss = f.read().split(" ", 4)[:4]
    os.unlink(path)
    return int(code), float(wall), Usage(float(cpu), int(rss), 1)


def run(argv, env=None, errfile=None):
    """Runs a command to completion through runstat: (exit code, wall seconds, Usage)."""
    err = errfile or os.devnull
    res = _result_file()
    pid = spawn([RUNSTAT, res, *argv], env=env, stderr=err, stdout=err)
    os.waitpid(pid, 0)
    return _read_result(res)


def start(argv, env=None, logfile=os.devnull):
    """Starts a daemon through runstat; stop() it for its Usage."""
    res = _result_file()
    return (spawn([RUNSTAT, res, *argv], env=env, stderr=logfile, stdout=logfile), res)


def stop(daemon, sig=signal.SIGTERM, timeout=30):
    """Signals a daemon from start() and waits for it; returns its Usage."""
    pid, res = daemon
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while True:
        wpid, _ = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.02)
    try:
        return _read_result(res)[2]
    except (OSError, ValueError):
        return Usage()


def child_pids():
    """Pids whose parent is this process (adopted orphans included)."""
    me, out = os.getpid(), []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                s = f.read()
        except OSError:
            continue
        if int(s[s.rindex(b")") + 2:].split()[1]) == me:
            out.append(int(d))
    return out


def reap_orphans(exclude=(), timeout=120.0, quiet_after=0.0):
    """Waits until every child of this process not in `exclude` has exited
    (the detached daemons of a tool finish their queue, then exit), and returns
    their summed Usage. `quiet_after`: also wait that long for late forks."""
    usage = Usage()
    deadline = time.monotonic() + timeout
    quiet_since = None
    while True:
        try:
            pid, status, ru = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            pid = 0
        if pid:
            if pid in exclude:
                raise RuntimeError(f"reaped an excluded child {pid}")
            usage.add(ru)
            quiet_since = None
            continue
        alive = [p for p in child_pids() if p not in exclude]
        if not alive:
            if quiet_since is None:
                quiet_since = time.monotonic()
            if time.monotonic() - quiet_since >= quiet_after:
                return usage
        else:
            quiet_since = None
        if time.monotonic() > deadline:
            for p in alive:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
        time.sleep(0.02)


def proc_usage(pid):
    """CPU seconds and VmHWM (KiB) of a live process, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/stat", "rb") as f:
        s = f.read()
    fields = s[s.rindex(b")") + 2:].split()
    cpu = (int(fields[11]) + int(fields[12])) / tick
    hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return Usage(cpu, hwm, 1)


def pct(xs, p):
    """The p-th percentile (nearest rank) of xs."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]


def median(xs):
    xs = list(xs)
    return statistics.median(xs) if xs else float("nan")


def is_segment(name):
    return len(name) == 24 and all(c in "0123456789ABCDEF" for c in name)


def segments(corpus, kind):
    d = os.path.join(corpus, kind)
    return [os.path.join(d, n) for n in sorted(os.listdir(d)) if is_segment(n)]


def warm(paths):
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 20):
                pass
