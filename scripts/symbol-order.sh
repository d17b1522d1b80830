#!/usr/bin/env bash
# Writes build/symbol-order.txt: the functions of barnacle's `dist` binary that
# a WAL push, a WAL restore, the sidecar and a base restore run, grouped so that
# each of them maps as few 64 KiB blocks of code as it can (scripts/symbol_order.py).
# build.rs links the dist binary with them first (see build.rs for why).
#
# Two sources, both from the dist binary itself, recorded per process:
#   1. valgrind --tool=callgrind over each workload: every function it runs;
#   2. then, natively, `perf record -e page-faults`: the code pages the process
#      faults in (CPU-specific code valgrind cannot run: AVX-512 AES-GCM,
#      SHA-NI), whose functions are added; the binary is relinked and this
#      repeats PASSES times (default 3).
# The workloads (default gzip 2 easy WAL push, its restore, gzip 6 hard WAL push, its
# restore, then the sidecar pushing both segments ahead with two workers, at the
# default level and at level 6,
# scraped once and stopped, then with BASE_BACKUP the restore of a base
# backup) run against a real S3 server over HTTPS, as in production.
#
# Usage: scripts/symbol-order.sh ENDPOINT BUCKET EASY_SEGMENT HARD_SEGMENT
#   with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_CA_BUNDLE
#   set for that server. The environment scripts/compare.sh builds (KEEP=1) is
#   one: its SeaweedFS, CA and the WAL corpus in /var/tmp/barnacle-wal-corpus.
#   BASE_BACKUP="s3://BUCKET/PREFIX SERVER" (optional): a prefix on the same
#   server holding a base backup (e.g. compare-backup.sh's 1 GB one, taken by
#   barnacle); its latest backup is restored into a temp directory.
# Needs valgrind and perf. Rerun after a toolchain or Cargo.lock change (the
# symbol names carry hashes that change with them; stale names are skipped).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# = 4 ] || { sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;$d' >&2; exit 2; }
ENDPOINT=$1 BUCKET=$2 EASY=$3 HARD=$4
PASSES=${PASSES:-3}
BIN=$ROOT/target/dist/barnacle
ORDER=$ROOT/build/symbol-order.txt
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
log() { echo "symbol-order: $*" >&2; }

# The sidecar over a data directory whose pg_wal holds both segments, ready,
# until it pushed them: sidecar_run PREFIX LEVEL (empty: the default) CMD...
sidecar_run() {
    local prefix=$1 level=$2 pgdata=$WORK/pgdata port
    shift 2
    local levels=()
    [ -n "$level" ] && levels=(--compression-level "$level")
    rm -rf "$pgdata" && mkdir -p "$pgdata/pg_wal/archive_status"
    cp "$EASY" "$HARD" "$pgdata/pg_wal/"
    touch "$pgdata/pg_wal/archive_status/$(basename "$EASY").ready" "$pgdata/pg_wal/archive_status/$(basename "$HARD").ready"
    port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
    "$@" sidecar "$BIN" sidecar --pgdata "$pgdata" --max-parallel 2 --listen "127.0.0.1:$port" \
        "${levels[@]}" --endpoint-url "$ENDPOINT" "$prefix" pg &
    local job=$! pushed=0
    for _ in $(seq 1 600); do
        pushed=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^barnacle_wal_pushed_total/{print $2}' || true)
        [ "${pushed:-0}" = 2 ] && break
        sleep 0.5
    done
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || true
    # The sidecar itself (under perf, its child; under valgrind, the tool's process).
    pkill -TERM -f "^$BIN sidecar --pgdata $pgdata|callgrind.*sidecar --pgdata $pgdata" || true
    wait "$job" || true
    [ "${pushed:-0}" = 2 ] || { log "the sidecar did not push both segments"; exit 1; }
}

# Every workload once, each under the command prefix given ("$@").
workloads() {
    local prefix=s3://$BUCKET/symbol-order-$RANDOM$RANDOM
    "$@" push "$BIN" wal-push --endpoint-url "$ENDPOINT" "$prefix" pg "$EASY"
    "$@" restore "$BIN" wal-restore --endpoint-url "$ENDPOINT" "$prefix" pg "$(basename "$EASY")" "$WORK/easy"
    "$@" push "$BIN" wal-push -z --compression-level 6 --endpoint-url "$ENDPOINT" "$prefix" pg "$HARD"
    "$@" restore "$BIN" wal-restore --endpoint-url "$ENDPOINT" "$prefix" pg "$(basename "$HARD")" "$WORK/hard"
    rm -f "$WORK/easy" "$WORK/hard"
    # The sidecar at the default level (zlib-rs), then at level 6 (libdeflate).
    sidecar_run "$prefix-sidecar" "" "$@"
    sidecar_run "$prefix-sidecar6" "6" "$@"
    if [ -n "${BASE_BACKUP:-}" ]; then
        # shellcheck disable=SC2086 # URL and server, split on purpose
        "$@" base "$BIN" restore --endpoint-url "$ENDPOINT" $BASE_BACKUP latest "$WORK/base" >/dev/null
        rm -rf "$WORK/base"
    fi
}

build() { (cd "$ROOT" && cargo build --profile dist --quiet); }
# Command prefixes for `workloads`: the first argument names the kind of process
# (push, restore, sidecar, base), and each call is recorded into its own file.
n=0
callgrind() {
    local kind=$1; shift; n=$((n + 1))
    valgrind -q --tool=callgrind --demangle=no --callgrind-out-file="$WORK/rec/cg.$kind.$n" "$@"
}
faults() {
    local kind=$1; shift; n=$((n + 1))
    perf record -q -e page-faults -c 1 -d -o "$WORK/pf.$kind.$n" "$@" >/dev/null 2>&1
    perf script -i "$WORK/pf.$kind.$n" -F ip,addr,sym,dso --no-demangle >"$WORK/rec/faults.$kind.$n" 2>/dev/null
}
order() { python3 "$ROOT/scripts/symbol_order.py" "$BIN" "$ORDER" "$WORK/rec"; }

mkdir -p "$WORK/rec"
log "pass 0: callgrind"
: >"$ORDER"
build
workloads callgrind
order
for pass in $(seq 1 "$PASSES"); do
    build
    log "pass $pass: page faults (code valgrind does not run)"
    workloads faults
    order
done
build
log "wrote $ORDER ($(wc -l <"$ORDER") symbols)"
