"""archive_command under pgbench load: barnacle alone, with its sidecar, with
CloudNativePG-style look-ahead, and pgBackRest archive-async (issue 5's
performance part). Run by scripts/compare.sh, which sets the environment.

One PostgreSQL 15 cluster (run as postgres, 16 MiB segments, synchronous_commit
off, checkpoints far apart) and one pgbench workload that writes WAL as fast as
the machine allows: LOAD_CLIENTS clients each inserting 1000 rows per
transaction (an md5 and a 192-character text per row; the WAL compresses about
4.5x with gzip, like the hard corpus). Each run, for one configuration:

  1. start its daemon (the sidecar, as postgres) and set archive_command to it,
     wrapped in runstat, which appends each call's wall time, CPU and peak RSS
     to a per-run file (the timing shim);
  2. TRUNCATE the table, CHECKPOINT, switch WAL and wait until nothing is .ready;
  3. pgbench for LOAD_SECONDS: pg_stat_archiver.archived_count, the WAL
     position and the .ready count are taken at its start and end;
  4. wait until the backlog is archived (the drain), stop the daemon, wait for
     detached processes (pgBackRest's async) to exit.

Reported per configuration (medians over LOAD_ROUNDS rounds, configurations
interleaved in an order that rotates each round): WAL written per second,
segments archived per second during the load (the sustained throughput), the
.ready backlog at its end, the drain time, segments per second over load and
drain, archive_command latency p50/p99 over every call of the run, CPU seconds
per archived segment (calls, daemons and their children) and the largest
process's peak RSS.
"""

import csv
import os
import shutil
import subprocess
import sys
import threading
import time

from common import become_subreaper, log as _log, median, pct, reap_orphans, run, start, stop

E = os.environ
PGBIN = E.get("PGBIN", "/usr/lib/postgresql/15/bin")
WORK = E["WORK"]
OUT = E["OUT"]
BIN = E["BIN"]
RUNSTAT = E["RUNSTAT"]
PGBACKREST = E["PGBACKREST"]
ENDPOINT = E["ENDPOINT"]
S3_PORT = E["S3_PORT"]
CA = E["CA"]
BUCKET = E["BUCKET"]
SECONDS = int(E.get("LOAD_SECONDS", "60"))
ROUNDS = int(E.get("LOAD_ROUNDS", "3"))
CLIENTS = int(E.get("LOAD_CLIENTS", "4"))
DRAIN_TIMEOUT = int(E.get("LOAD_DRAIN_TIMEOUT", "900"))
ONLY = [c for c in E.get("LOAD_CONFIGS", "").split(",") if c]
SERVER = "pg"
STANZA = "bench"
SEG = 16 << 20

CONFIGS = [
    # name, label, kind, level, workers
    ("walpush-l2", "(a) walpush alone, gzip 2", "walpush", 2, 1),
    ("lookahead2-l2", "(c) walpush --max-parallel 2, gzip 2", "lookahead", 2, 2),
    ("sidecar2-l2", "(b) walpush + sidecar --max-parallel 2, gzip 2", "sidecar", 2, 2),
    ("lookahead2-l6", "(c) walpush --max-parallel 2, gzip 6", "lookahead", 6, 2),
    ("sidecar2-l6", "(b) walpush + sidecar --max-parallel 2, gzip 6", "sidecar", 6, 2),
    ("pgbackrest-async2", "(d) pgBackRest archive-push async, process-max 2, gz 6", "pgbackrest", 6, 2),
]
if ONLY:
    CONFIGS = [c for c in CONFIGS if c[0] in ONLY]

AWS_ENV = {k: E[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
                             "AWS_DEFAULT_REGION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                             "AWS_CA_BUNDLE")}


def log(msg):
    _log("compare/load", msg)


D = os.path.join(WORK, "load")
PGDATA = os.path.join(D, "data")
SOCK = D
PORT = None


def as_pg(argv):
    return ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
            "/usr/bin/env", "HOME=" + D, *[f"{k}={v}" for k, v in AWS_ENV.items()], *argv]


def sh_pg(argv, check=True, capture=True):
    p = subprocess.run(as_pg(argv), stdin=subprocess.DEVNULL, capture_output=capture, text=True)
    if check and p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(argv)}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def psql(sql):
    return sh_pg([f"{PGBIN}/psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-h", SOCK, "-p", str(PORT),
                  "-U", "postgres", "-d", "postgres", "-c", sql]).strip()


def ready_count():
    try:
        return sum(1 for n in os.listdir(os.path.join(PGDATA, "pg_wal", "archive_status")) if n.endswith(".ready"))
    except OSError:
        return -1


def archiver():
    a, f, last = psql("select archived_count, failed_count, coalesce(last_archived_wal, '') "
                      "from pg_stat_archiver").split("|")
    return int(a), int(f), last


def lsn():
    return int(psql("select pg_current_wal_lsn() - '0/0'::pg_lsn"))


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_cluster():
    global PORT
    os.makedirs(D)
    os.chmod(WORK, 0o755)
    shutil.chown(D, "postgres", "postgres")
    PORT = free_port()
    sh_pg([f"{PGBIN}/initdb", "-D", PGDATA, "-U", "postgres", "-A", "trust", "-E", "UTF8"])
    with open(os.path.join(PGDATA, "postgresql.conf"), "a") as f:
        f.write(f"""
port = {PORT}
listen_addresses = ''
unix_socket_directories = '{SOCK}'
wal_level = replica
archive_mode = on
archive_command = '/bin/true'
max_wal_size = 8GB
min_wal_size = 1GB
checkpoint_timeout = 30min
shared_buffers = 512MB
wal_buffers = 64MB
synchronous_commit = off
log_min_messages = warning
log_checkpoints = off
""")
    # The postmaster (and so the archiver) gets the store's credentials.
    sh_pg([f"{PGBIN}/pg_ctl", "-D", PGDATA, "-l", os.path.join(D, "server.log"), "-w", "start"])
    psql("create table load_t (id bigserial, a text, b text)")
    with open(os.path.join(D, "insert.sql"), "w") as f:
        f.write("INSERT INTO load_t (a, b) SELECT md5(random()::text), repeat(md5(g::text), 6) "
                "FROM generate_series(1, 1000) g;\n")
    os.chmod(os.path.join(D, "insert.sql"), 0o644)


def postmaster_pid():
    with open(os.path.join(PGDATA, "postmaster.pid")) as f:
        return int(f.readline())


def pgbr_conf(path, repo_path):
    base = os.path.dirname(path)
    lines = [
        "[global]", "repo1-type=s3", f"repo1-path=/{repo_path}", f"repo1-s3-bucket={BUCKET}",
        "repo1-s3-endpoint=127.0.0.1", f"repo1-storage-port={S3_PORT}", "repo1-s3-region=us-east-1",
        f"repo1-s3-key={E['AWS_ACCESS_KEY_ID']}", f"repo1-s3-key-secret={E['AWS_SECRET_ACCESS_KEY']}",
        "repo1-s3-uri-style=path", f"repo1-storage-ca-file={CA}", "compress-type=gz", "compress-level=6",
        "archive-async=y", "process-max=2", "log-level-console=warn", "log-level-stderr=warn",
        "log-level-file=off", f"lock-path={base}/lock", f"spool-path={base}/spool",
        f"[{STANZA}]", f"pg1-path={PGDATA}", f"pg1-socket-path={SOCK}", f"pg1-port={PORT}", "pg1-user=postgres",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o644)


class Sampler(threading.Thread):
    def __init__(self, t0):
        super().__init__(daemon=True)
        self.t0, self.samples, self.stop_ev = t0, [], threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            self.samples.append((time.monotonic() - self.t0, ready_count()))
            self.stop_ev.wait(1.0)


def one_run(cfg, rnd, backlog_rows):
    name, label, kind, level, workers = cfg
    base = os.path.join(D, "runs", f"r{rnd}-{name}")
    os.makedirs(base)
    shutil.chown(base, "postgres", "postgres")
    latency = os.path.join(base, "latency.log")
    url = f"s3://{BUCKET}/load/r{rnd}/{name}"
    daemon = None
    if kind == "pgbackrest":
        conf = os.path.join(base, "pgbackrest.conf")
        pgbr_conf(conf, f"pgbr-load/r{rnd}/{name}")
        sh_pg([PGBACKREST, f"--config={conf}", f"--stanza={STANZA}", "stanza-create"])
        cmd = f"{RUNSTAT} {latency} {PGBACKREST} --config={conf} --stanza={STANZA} archive-push %p"
    else:
        extra = f" --max-parallel {workers}" if kind == "lookahead" else ""
        cmd = (f"{RUNSTAT} {latency} {BIN}/walpush --endpoint-url {ENDPOINT} --compression-level {level}"
               f"{extra} {url} {SERVER} %p")
        if kind == "sidecar":
            daemon = start(as_pg([f"{BIN}/barnacle", "sidecar", "--endpoint-url", ENDPOINT, "--pgdata", PGDATA,
                                  "--max-parallel", str(workers), "--compression-level", str(level),
                                  "--spool-dir", os.path.join(base, "spool"), url, SERVER]),
                           logfile=os.path.join(base, "sidecar.log"))
            time.sleep(1.0)
            if os.waitpid(daemon[0], os.WNOHANG)[0]:
                sys.exit(f"the sidecar exited: {open(os.path.join(base, 'sidecar.log')).read()[-2000:]}")
    psql(f"alter system set archive_command = '{cmd}'")
    psql("select pg_reload_conf()")
    # Settle: the table emptied, a checkpoint, and nothing left to archive.
    psql("truncate load_t")
    psql("checkpoint")
    psql("select pg_switch_wal()")
    deadline = time.monotonic() + 300
    while ready_count() > 0:
        if time.monotonic() > deadline:
            sys.exit(f"{name}: the backlog did not drain before the run")
        time.sleep(0.2)
    time.sleep(1.0)
    if os.path.exists(latency):
        os.rename(latency, latency + ".settle")

    a0, f0, _ = archiver()
    l0 = lsn()
    t0 = time.monotonic()
    sampler = Sampler(t0)
    sampler.start()
    rc, _, pgb = run(as_pg([f"{PGBIN}/pgbench", "-n", "-h", SOCK, "-p", str(PORT), "-U", "postgres",
                            "-c", str(CLIENTS), "-j", "2", "-T", str(SECONDS), "-f", os.path.join(D, "insert.sql"),
                            "postgres"]), errfile=os.path.join(base, "pgbench.log"))
    t1 = time.monotonic()
    a1, f1, _ = archiver()
    l1 = lsn()
    backlog = ready_count()
    if rc != 0:
        sys.exit(f"pgbench failed: {open(os.path.join(base, 'pgbench.log')).read()[-2000:]}")
    # Drain.
    while ready_count() > 0:
        if time.monotonic() - t1 > DRAIN_TIMEOUT:
            log(f"{name}: still {ready_count()} .ready after {DRAIN_TIMEOUT} s; giving up the drain")
            break
        time.sleep(0.1)
    t2 = time.monotonic()
    sampler.stop_ev.set()
    sampler.join()
    a2, f2, _ = archiver()
    daemon_usage = stop(daemon) if daemon else None
    orphans = reap_orphans(exclude={postmaster_pid()}, quiet_after=0.5)
    for t, n in sampler.samples:
        backlog_rows.append({"config": name, "round": rnd, "t_s": f"{t:.1f}", "ready": n})

    calls = []
    with open(latency) as f:
        for line in f:
            code, wall, cpu, rss, started = line.split(" ", 5)[:5]
            calls.append((int(code), float(wall), float(cpu), int(rss), float(started)))
    walls = [c[1] for c in calls]
    tps = ""
    with open(os.path.join(base, "pgbench.log")) as f:
        for line in f:
            if line.startswith("tps"):
                tps = line.split()[2]
    cpu = sum(c[2] for c in calls) + orphans.cpu + (daemon_usage.cpu if daemon_usage else 0)
    rss = max([c[3] for c in calls] + [orphans.maxrss, daemon_usage.maxrss if daemon_usage else 0])
    archived = a2 - a0
    row = {
        "config": name, "label": label, "round": rnd, "load_s": f"{t1 - t0:.1f}",
        "wal_segments": f"{(l1 - l0) / SEG:.1f}", "wal_seg_per_s": f"{(l1 - l0) / SEG / (t1 - t0):.3f}",
        "archived_during_load": a1 - a0, "archived_seg_per_s": f"{(a1 - a0) / (t1 - t0):.3f}",
        "backlog_at_end": backlog, "drain_s": f"{t2 - t1:.1f}",
        "drain_seg_per_s": f"{(a2 - a1) / (t2 - t1):.3f}" if t2 - t1 > 0.5 else "",
        "overall_seg_per_s": f"{archived / (t2 - t0):.3f}", "archived_total": archived,
        "failed": f2 - f0, "calls": len(calls), "failed_calls": sum(1 for c in calls if c[0] != 0),
        "latency_p50_s": f"{pct(walls, 50):.4f}", "latency_p90_s": f"{pct(walls, 90):.4f}",
        "latency_p99_s": f"{pct(walls, 99):.4f}", "latency_max_s": f"{max(walls):.4f}",
        "cpu_s_per_segment": f"{cpu / max(archived, 1):.4f}", "peak_rss_mib": f"{rss / 1024:.1f}",
        "daemon_rss_mib": f"{max(orphans.maxrss, daemon_usage.maxrss if daemon_usage else 0) / 1024:.1f}",
        "pgbench_tps": tps,
    }
    log(f"r{rnd} {name:<18} WAL {row['wal_seg_per_s']} seg/s, archived {row['archived_seg_per_s']} seg/s "
        f"during load, backlog {backlog}, drain {row['drain_s']} s, latency p50 {row['latency_p50_s']} "
        f"p99 {row['latency_p99_s']} s, cpu {row['cpu_s_per_segment']} s/seg, rss {row['peak_rss_mib']} MiB")
    return row


def main():
    become_subreaper()
    setup_cluster()
    runs, backlog_rows = [], []
    try:
        for rnd in range(ROUNDS):
            k = rnd % len(CONFIGS)
            for cfg in CONFIGS[k:] + CONFIGS[:k]:
                runs.append(one_run(cfg, rnd, backlog_rows))
    finally:
        psql("alter system set archive_command = '/bin/true'")
        psql("select pg_reload_conf()")
        sh_pg([f"{PGBIN}/pg_ctl", "-D", PGDATA, "-m", "fast", "-w", "stop"], check=False)
        reap_orphans(quiet_after=0.2, timeout=30)
        if runs:
            with open(os.path.join(OUT, "load_runs.csv"), "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(runs[0]))
                w.writeheader()
                w.writerows(runs)
            with open(os.path.join(OUT, "load_backlog.csv"), "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=["config", "round", "t_s", "ready"])
                w.writeheader()
                w.writerows(backlog_rows)

    rows = []
    for name, label, *_ in CONFIGS:
        rs = [r for r in runs if r["config"] == name]
        m = lambda k: median(float(r[k]) for r in rs)
        rows.append({
            "config": name, "label": label, "rounds": len(rs),
            "wal_seg_per_s": f"{m('wal_seg_per_s'):.3f}",
            "archived_seg_per_s": f"{m('archived_seg_per_s'):.3f}",
            "archived_min": f"{min(float(r['archived_seg_per_s']) for r in rs):.3f}",
            "archived_max": f"{max(float(r['archived_seg_per_s']) for r in rs):.3f}",
            "backlog_at_end": f"{m('backlog_at_end'):.0f}", "drain_s": f"{m('drain_s'):.1f}",
            "drain_seg_per_s": f"{median(float(r['drain_seg_per_s']) for r in rs if r['drain_seg_per_s']):.3f}",
            "overall_seg_per_s": f"{m('overall_seg_per_s'):.3f}",
            "latency_p50_s": f"{m('latency_p50_s'):.4f}", "latency_p99_s": f"{m('latency_p99_s'):.4f}",
            "cpu_s_per_segment": f"{m('cpu_s_per_segment'):.4f}",
            "peak_rss_mib": f"{max(float(r['peak_rss_mib']) for r in rs):.1f}",
            "failed": sum(int(r["failed"]) for r in rs), "pgbench_tps": f"{m('pgbench_tps'):.0f}",
        })
    with open(os.path.join(OUT, "load_summary.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        print(f"{r['config']:<18} WAL {r['wal_seg_per_s']:>6} seg/s  archived {r['archived_seg_per_s']:>6} seg/s "
              f"({r['archived_min']}-{r['archived_max']})  backlog {r['backlog_at_end']:>4}  drain {r['drain_s']:>6} s  "
              f"overall {r['overall_seg_per_s']:>6}  p50 {r['latency_p50_s']} p99 {r['latency_p99_s']} s  "
              f"cpu {r['cpu_s_per_segment']} s/seg  rss {r['peak_rss_mib']} MiB  failed {r['failed']}")


if __name__ == "__main__":
    main()
