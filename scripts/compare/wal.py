"""WAL push and WAL restore, barnacle against Barman and pgBackRest, interleaved.

Run by scripts/compare.sh (which sets the environment below); not meant to be
run by hand.

Every round archives each corpus (easy, hard) once per variant, the variants in
an order that rotates from round to round and corpus to corpus. One archive
batch = what PostgreSQL's archiver does with a backlog: every segment of the
corpus sits in a fresh fake PGDATA's pg_wal (hard links to the corpus files)
with its archive_status/NAME.ready, and archive_command runs once per segment,
oldest first, one process per call, the .ready renamed to .done after each
successful call. Daemons (barnacle's sidecar) are started before the batch and
stopped after it, untimed; pgBackRest's async process is started by its first
archive-push as in production, and is waited for after the batch. The figure
per segment is the batch's wall time divided by its segment count, fork of
the first call to exit of the last, so the tools that work ahead are credited
with it. Restore batches do the same with restore_command into an empty
directory, each tool reading the archive it wrote in round 0 at gzip level 6.

CPU is user + system of every process involved (calls, daemons, their
children: wait4 reports each process with its waited-for descendants, and the
driver is a child subreaper so detached daemons come back to it). Peak RSS is
the largest single process (ru_maxrss) seen for the variant over all rounds.
"""

import csv
import hashlib
import json
import os
import shutil
import sys
import time
import urllib.request

import boto3

from common import (
    become_subreaper, log as _log, median, pct, reap_orphans, run, segments, start, stop, warm,
)

E = os.environ
CORPUS = E["CORPUS"]
BIN = E["BIN"]                  # walpush, restore, barnacle (symlinks to a copy of the binary)
VENV_BIN = E["VENV_BIN"]        # barman-cloud-wal-archive, barman-cloud-wal-restore
PGBACKREST = E["PGBACKREST"]
ENDPOINT = E["ENDPOINT"]        # https://127.0.0.1:PORT
S3_PORT = E["S3_PORT"]
CA = E["CA"]
BUCKET = E["BUCKET"]
PG_CONTROL = E["PG_CONTROL"]    # a pg_control with the corpus's system identifier
PG_VERSION = E["PG_VERSION_FILE"]
WORK = E["WORK"]
OUT = E["OUT"]
ROUNDS = int(E.get("ROUNDS", "5"))
MAX_SEGMENTS = int(E.get("SEGMENTS", "0"))
ONLY = [v for v in E.get("VARIANTS", "").split(",") if v]
SERVER = "pg"
STANZA = "bench"


def log(msg):
    _log("compare/wal", msg)


s3 = boto3.client("s3", endpoint_url=ENDPOINT, verify=CA)

# ---- tools -----------------------------------------------------------------------


def pgbr_conf(path, repo_path, pgdata, extra=()):
    base = os.path.dirname(path)
    lines = [
        "[global]",
        "repo1-type=s3",
        f"repo1-path=/{repo_path}",
        f"repo1-s3-bucket={BUCKET}",
        "repo1-s3-endpoint=127.0.0.1",
        f"repo1-storage-port={S3_PORT}",
        "repo1-s3-region=us-east-1",
        f"repo1-s3-key={E['AWS_ACCESS_KEY_ID']}",
        f"repo1-s3-key-secret={E['AWS_SECRET_ACCESS_KEY']}",
        "repo1-s3-uri-style=path",
        f"repo1-storage-ca-file={CA}",
        "compress-type=gz",
        "compress-level=6",
        "log-level-console=warn",
        "log-level-stderr=warn",
        "log-level-file=off",
        f"lock-path={base}/lock",
        f"spool-path={base}/spool",
        *extra,
        f"[{STANZA}]",
        f"pg1-path={pgdata}",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def fake_pgdata(d, segs=()):
    os.makedirs(os.path.join(d, "global"))
    os.makedirs(os.path.join(d, "pg_wal", "archive_status"))
    shutil.copy(PG_CONTROL, os.path.join(d, "global", "pg_control"))
    shutil.copy(PG_VERSION, os.path.join(d, "PG_VERSION"))
    for s in segs:
        dst = os.path.join(d, "pg_wal", os.path.basename(s))
        try:
            os.link(s, dst)
        except OSError:
            shutil.copy(s, dst)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stanza_create(conf):
    rc, _, _ = run([PGBACKREST, f"--config={conf}", f"--stanza={STANZA}", "--no-online", "stanza-create"],
                   errfile=conf + ".log")
    if rc != 0:
        sys.exit(f"pgbackrest stanza-create failed: {open(conf + '.log').read()}")


class Push:
    """One way of running archive_command."""

    def __init__(self, name, tool, level, mode, workers, label):
        self.name, self.tool, self.level, self.mode, self.workers, self.label = name, tool, level, mode, workers, label

    def url(self, rnd, kind):
        return f"s3://{BUCKET}/r{rnd}/{kind}/{self.name}"

    def repo(self, rnd, kind):
        return f"pgbr/r{rnd}/{kind}/{self.name}"

    def prepare(self, base, pgdata, rnd, kind):
        """Untimed set-up; returns a daemon pid or None."""
        self.conf = None
        if self.tool == "pgbackrest":
            extra = ["archive-async=y", f"process-max={self.workers}"] if self.mode == "async" else []
            self.conf = pgbr_conf(os.path.join(base, "pgbackrest.conf"), self.repo(rnd, kind), pgdata, extra)
            stanza_create(self.conf)
        if self.mode == "sidecar":
            port = free_port()
            daemon = start([f"{BIN}/barnacle", "sidecar", "--endpoint-url", ENDPOINT, "--pgdata", pgdata,
                            "--max-parallel", str(self.workers), "--compression-level", str(self.level),
                            "--listen", f"127.0.0.1:{port}", "--spool-dir", os.path.join(base, "spool"),
                            self.url(rnd, kind), SERVER],
                           logfile=os.path.join(base, "sidecar.log"))
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                    return daemon
                except OSError:
                    if os.waitpid(daemon[0], os.WNOHANG)[0]:
                        sys.exit(f"the sidecar exited: {open(os.path.join(base, 'sidecar.log')).read()}")
                    time.sleep(0.05)
            sys.exit("the sidecar did not answer /healthz")
        return None

    def argv(self, path, rnd, kind):
        if self.tool == "barnacle":
            extra = ["--max-parallel", str(self.workers)] if self.mode == "look-ahead" else []
            return [f"{BIN}/walpush", "--endpoint-url", ENDPOINT, "--compression-level", str(self.level),
                    *extra, self.url(rnd, kind), SERVER, path]
        if self.tool == "barman":
            return [f"{VENV_BIN}/barman-cloud-wal-archive", "--gzip", "--endpoint-url", ENDPOINT,
                    self.url(rnd, kind), SERVER, path]
        return [PGBACKREST, f"--config={self.conf}", f"--stanza={STANZA}", "archive-push", path]

    def stored(self, rnd, kind):
        """(objects, bytes) of the WAL archive this variant wrote."""
        if self.tool == "pgbackrest":
            prefix, ok = f"{self.repo(rnd, kind)}/archive/", lambda k: k.endswith(".gz")
        else:
            prefix, ok = f"r{rnd}/{kind}/{self.name}/{SERVER}/wals/", lambda k: True
        n = size = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for o in page.get("Contents", []):
                if ok(o["Key"]):
                    n += 1
                    size += o["Size"]
        return n, size


class Restore:
    def __init__(self, name, tool, mode, workers, source, label):
        self.name, self.tool, self.mode, self.workers, self.source, self.label = name, tool, mode, workers, source, label

    def prepare(self, base, pgdata, kind):
        self.spool = os.path.join(base, "spool")
        self.conf = None
        if self.tool == "pgbackrest":
            extra = ["archive-async=y", f"process-max={self.workers}"] if self.mode == "async" else []
            self.conf = pgbr_conf(os.path.join(base, "pgbackrest.conf"), self.source.repo(0, kind), pgdata, extra)

    def argv(self, name, dest, kind):
        url = self.source.url(0, kind)
        if self.tool == "barnacle":
            extra = ["-p", str(self.workers), "--spool-dir", self.spool] if self.workers > 1 else []
            return [f"{BIN}/restore", "--endpoint-url", ENDPOINT, *extra, url, SERVER, name, dest]
        if self.tool == "barman":
            return [f"{VENV_BIN}/barman-cloud-wal-restore", "--endpoint-url", ENDPOINT, url, SERVER, name, dest]
        return [PGBACKREST, f"--config={self.conf}", f"--stanza={STANZA}", "archive-get", name, dest]


PUSH = [
    Push("barnacle-walpush-l2", "barnacle", 2, "sequential", 1, "barnacle walpush, gzip 2 (default)"),
    Push("barnacle-walpush-l3", "barnacle", 3, "sequential", 1, "barnacle walpush, gzip 3"),
    Push("barnacle-walpush-l6", "barnacle", 6, "sequential", 1, "barnacle walpush, gzip 6"),
    Push("barnacle-lookahead2-l2", "barnacle", 2, "look-ahead", 2, "barnacle walpush --max-parallel 2, gzip 2"),
    Push("barnacle-lookahead2-l6", "barnacle", 6, "look-ahead", 2, "barnacle walpush --max-parallel 2, gzip 6"),
    Push("barnacle-sidecar1-l2", "barnacle", 2, "sidecar", 1, "barnacle sidecar --max-parallel 1, gzip 2"),
    Push("barnacle-sidecar1-l6", "barnacle", 6, "sidecar", 1, "barnacle sidecar --max-parallel 1, gzip 6"),
    Push("barnacle-sidecar2-l2", "barnacle", 2, "sidecar", 2, "barnacle sidecar --max-parallel 2, gzip 2"),
    Push("barnacle-sidecar2-l6", "barnacle", 6, "sidecar", 2, "barnacle sidecar --max-parallel 2, gzip 6"),
    Push("barman", "barman", 6, "sequential", 1, "barman-cloud-wal-archive --gzip (6)"),
    Push("pgbackrest-sync", "pgbackrest", 6, "sequential", 1, "pgBackRest archive-push, gz 6"),
    Push("pgbackrest-async2", "pgbackrest", 6, "async", 2, "pgBackRest archive-push async, process-max 2, gz 6"),
]
BY_NAME = {p.name: p for p in PUSH}
RESTORE = [
    Restore("barnacle-restore", "barnacle", "sequential", 1, BY_NAME["barnacle-walpush-l6"], "barnacle restore"),
    Restore("barnacle-restore-p4", "barnacle", "prefetch", 4, BY_NAME["barnacle-walpush-l6"], "barnacle restore -p 4"),
    Restore("barman-restore", "barman", "sequential", 1, BY_NAME["barman"], "barman-cloud-wal-restore"),
    Restore("pgbackrest-get", "pgbackrest", "sequential", 1, BY_NAME["pgbackrest-sync"], "pgBackRest archive-get"),
    Restore("pgbackrest-get-async2", "pgbackrest", "async", 2, BY_NAME["pgbackrest-sync"],
            "pgBackRest archive-get async, process-max 2"),
]
if ONLY:
    PUSH = [p for p in PUSH if p.name in ONLY or any(r.source is p for r in RESTORE if r.name in ONLY)]
    RESTORE = [r for r in RESTORE if r.name in ONLY]

# ---- batches ---------------------------------------------------------------------


def rotate(xs, k):
    if not xs:
        return xs  # VARIANTS left nothing of this operation
    k %= len(xs)
    return xs[k:] + xs[:k]


def push_batch(v, rnd, kind, segs, calls):
    base = os.path.join(WORK, "push", f"r{rnd}", kind, v.name)
    os.makedirs(base)
    pgdata = os.path.join(base, "pgdata")
    fake_pgdata(pgdata, segs)
    status = os.path.join(pgdata, "pg_wal", "archive_status")
    daemon = v.prepare(base, pgdata, rnd, kind)
    errfile = os.path.join(base, "calls.log")
    usage_calls = []
    t0 = time.perf_counter()
    for s in segs:  # the backlog appears; a sidecar sees it at once
        open(os.path.join(status, os.path.basename(s) + ".ready"), "w").close()
    for s in segs:
        name = os.path.basename(s)
        rc, wall, u = run(v.argv(os.path.join(pgdata, "pg_wal", name), rnd, kind), errfile=errfile)
        if rc != 0:
            sys.exit(f"{v.name} r{rnd} {kind} {name}: exit {rc}\n{open(errfile).read()[-3000:]}")
        os.rename(os.path.join(status, name + ".ready"), os.path.join(status, name + ".done"))
        usage_calls.append(u)
        calls.append({"op": "push", "round": rnd, "corpus": kind, "variant": v.name, "segment": name,
                      "wall_s": f"{wall:.4f}", "cpu_s": f"{u.cpu:.4f}", "maxrss_kib": u.maxrss})
    batch = time.perf_counter() - t0
    daemon_usage = stop(daemon) if daemon else None
    orphans = reap_orphans(quiet_after=0.2)
    n, size = v.stored(rnd, kind)
    if n != len(segs):
        sys.exit(f"{v.name} r{rnd} {kind}: {n} objects stored for {len(segs)} segments")
    cpu = sum(u.cpu for u in usage_calls) + orphans.cpu + (daemon_usage.cpu if daemon_usage else 0)
    rss_calls = max(u.maxrss for u in usage_calls)
    rss_daemon = max(orphans.maxrss, daemon_usage.maxrss if daemon_usage else 0)
    shutil.rmtree(pgdata)
    return {"op": "push", "round": rnd, "corpus": kind, "variant": v.name, "segments": len(segs),
            "batch_s": batch, "cpu_s": cpu, "rss_calls_kib": rss_calls, "rss_daemons_kib": rss_daemon,
            "daemon_procs": orphans.procs + (1 if daemon_usage else 0), "stored_bytes": size}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def restore_batch(v, rnd, kind, segs, calls, digests):
    base = os.path.join(WORK, "restore", f"r{rnd}", kind, v.name)
    os.makedirs(base)
    pgdata = os.path.join(base, "pgdata")
    fake_pgdata(pgdata)
    dest_dir = os.path.join(pgdata, "pg_wal")
    v.prepare(base, pgdata, kind)
    errfile = os.path.join(base, "calls.log")
    usage_calls = []
    t0 = time.perf_counter()
    for s in segs:
        name = os.path.basename(s)
        dest = os.path.join(dest_dir, name)
        rc, wall, u = run(v.argv(name, dest, kind), errfile=errfile)
        if rc != 0:
            sys.exit(f"{v.name} r{rnd} {kind} {name}: exit {rc}\n{open(errfile).read()[-3000:]}")
        usage_calls.append(u)
        calls.append({"op": "restore", "round": rnd, "corpus": kind, "variant": v.name, "segment": name,
                      "wall_s": f"{wall:.4f}", "cpu_s": f"{u.cpu:.4f}", "maxrss_kib": u.maxrss})
    batch = time.perf_counter() - t0
    orphans = reap_orphans(quiet_after=0.2)
    for s in segs:
        dest = os.path.join(dest_dir, os.path.basename(s))
        if os.path.getsize(dest) != os.path.getsize(s) or (rnd == 0 and sha256(dest) != digests[s]):
            sys.exit(f"{v.name} r{rnd} {kind}: {dest} differs from {s}")
    shutil.rmtree(base)
    cpu = sum(u.cpu for u in usage_calls) + orphans.cpu
    return {"op": "restore", "round": rnd, "corpus": kind, "variant": v.name, "segments": len(segs),
            "batch_s": batch, "cpu_s": cpu, "rss_calls_kib": max(u.maxrss for u in usage_calls),
            "rss_daemons_kib": orphans.maxrss, "daemon_procs": orphans.procs, "stored_bytes": ""}


# ---- main ------------------------------------------------------------------------


def main():
    become_subreaper()
    corpora = {}
    for kind in ("easy", "hard"):
        segs = segments(CORPUS, kind)
        if MAX_SEGMENTS and len(segs) > MAX_SEGMENTS:
            segs = segs[:MAX_SEGMENTS]  # contiguous: prefetchers look at the next names
        corpora[kind] = segs
        warm(segs)
    digests = {s: sha256(s) for segs in corpora.values() for s in segs}
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass  # compare.sh made it

    # Warm-up, untimed: each tool once (page cache of the binaries, Python's bytecode).
    warm_segs = corpora["easy"][:2]
    for v in PUSH:
        if v.tool != "barnacle" or v.mode == "sequential":
            push_batch(v, "w", "easy", warm_segs, [])

    calls, batches = [], []
    for rnd in range(ROUNDS):
        for ki, (kind, segs) in enumerate(corpora.items()):
            for v in rotate(PUSH, rnd * 2 + ki):
                b = push_batch(v, rnd, kind, segs, calls)
                batches.append(b)
                log(f"push    r{rnd} {kind} {v.name:<24} {b['batch_s'] / b['segments']:.4f} s/segment  "
                    f"cpu {b['cpu_s'] / b['segments']:.4f} s/segment  rss {max(b['rss_calls_kib'], b['rss_daemons_kib']) / 1024:.1f} MiB")
    for rnd in range(ROUNDS):
        for ki, (kind, segs) in enumerate(corpora.items()):
            for v in rotate(RESTORE, rnd * 2 + ki):
                b = restore_batch(v, rnd, kind, segs, calls, digests)
                batches.append(b)
                log(f"restore r{rnd} {kind} {v.name:<24} {b['batch_s'] / b['segments']:.4f} s/segment  "
                    f"cpu {b['cpu_s'] / b['segments']:.4f} s/segment  rss {max(b['rss_calls_kib'], b['rss_daemons_kib']) / 1024:.1f} MiB")

    with open(os.path.join(OUT, "wal_calls.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(calls[0]))
        w.writeheader()
        w.writerows(calls)
    with open(os.path.join(OUT, "wal_batches.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(batches[0]))
        w.writeheader()
        for b in batches:
            w.writerow({k: (f"{x:.4f}" if isinstance(x, float) else x) for k, x in b.items()})

    rows = []
    labels = {v.name: v for v in [*PUSH, *RESTORE]}
    for op, variants in (("push", PUSH), ("restore", RESTORE)):
        for kind, segs in corpora.items():
            raw = sum(os.path.getsize(s) for s in segs)
            for v in variants:
                bs = [b for b in batches if b["op"] == op and b["corpus"] == kind and b["variant"] == v.name]
                if not bs:
                    continue
                per = [b["batch_s"] / b["segments"] for b in bs]
                cw = [float(c["wall_s"]) for c in calls
                      if c["op"] == op and c["corpus"] == kind and c["variant"] == v.name]
                s = median(per)
                stored = median(b["stored_bytes"] for b in bs) if op == "push" else None
                rows.append({
                    "op": op, "corpus": kind, "variant": v.name, "label": v.label, "tool": v.tool,
                    "level": getattr(v, "level", ""), "mode": v.mode, "workers": v.workers,
                    "segments": len(segs), "rounds": len(bs),
                    "s_per_segment": f"{s:.4f}", "min_s": f"{min(per):.4f}", "max_s": f"{max(per):.4f}",
                    "mib_per_s": f"{raw / len(segs) / 1048576 / s:.1f}",
                    "cpu_s_per_segment": f"{median(b['cpu_s'] / b['segments'] for b in bs):.4f}",
                    "call_p50_s": f"{pct(cw, 50):.4f}", "call_p99_s": f"{pct(cw, 99):.4f}",
                    "peak_rss_mib": f"{max(max(b['rss_calls_kib'], b['rss_daemons_kib']) for b in bs) / 1024:.1f}",
                    "call_rss_mib": f"{max(b['rss_calls_kib'] for b in bs) / 1024:.1f}",
                    "daemon_rss_mib": f"{max(b['rss_daemons_kib'] for b in bs) / 1024:.1f}",
                    "stored_mib": f"{stored / 1048576:.2f}" if stored else "",
                    "compression_ratio": f"{raw / stored:.2f}" if stored else "",
                })
    with open(os.path.join(OUT, "wal_summary.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        print(f"{r['op']:<8}{r['corpus']:<5} {r['variant']:<24} {r['s_per_segment']:>8} s/seg "
              f"({r['min_s']}-{r['max_s']}) {r['mib_per_s']:>7} MiB/s cpu {r['cpu_s_per_segment']:>7} "
              f"p50 {r['call_p50_s']} p99 {r['call_p99_s']} rss {r['peak_rss_mib']:>6} MiB "
              f"{r['compression_ratio'] and r['compression_ratio'] + 'x'}")
    json.dump({"corpora": {k: [os.path.basename(s) for s in v] for k, v in corpora.items()}},
              open(os.path.join(OUT, "wal_corpora.json"), "w"))


if __name__ == "__main__":
    main()
