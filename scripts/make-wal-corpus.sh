#!/usr/bin/env bash
# Two corpora of real 16 MiB WAL segments for barnacle's benchmarks, written by a
# throwaway PostgreSQL 15 cluster:
#
#   OUT_DIR/easy/  segments written while `pgbench -i` loads its tables (COPY of
#                  pgbench_accounts, whose rows are mostly blank filler): very
#                  compressible, about 25-30x with gzip -6;
#   OUT_DIR/hard/  the primary-key builds of those tables, TPC-B traffic right
#                  after a checkpoint (full-page images), then a table of random
#                  md5 text and an index on it: poorly compressible, about 3-5x.
#
# Usage: scripts/make-wal-corpus.sh OUT_DIR
#   Idempotent: when OUT_DIR/easy and OUT_DIR/hard already hold segments it does
#   nothing. Takes about a minute. Run it as root (PostgreSQL runs as the
#   'postgres' user through runuser, in a directory it owns, on a free loopback
#   port) or as a user that can run PostgreSQL itself.
#
# Every segment goes through archive_command = 'cp %p ARCHIVE/%f'; the corpora
# are then sorted by which phase wrote each segment (phase boundaries are WAL
# switches, whose segment names are recorded), so the archiver's asynchrony
# cannot mix them up. The segment holding initdb's WAL belongs to no corpus.
#
# Knobs (environment): PGBIN (/usr/lib/postgresql/15/bin), SCALE (40),
# TPCB_SECONDS (10), RANDOM_ROWS (900000), MAX_SEGMENTS (40).
set -euo pipefail

OUT=${1:?usage: make-wal-corpus.sh OUT_DIR}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
SCALE=${SCALE:-40}
TPCB_SECONDS=${TPCB_SECONDS:-10}
RANDOM_ROWS=${RANDOM_ROWS:-900000}
MAX_SEGMENTS=${MAX_SEGMENTS:-40}

segments() { grep -E '^[0-9A-F]{24}$'; }
count_segments() { ls "$1" 2>/dev/null | grep -cE '^[0-9A-F]{24}$' || true; }

if [ "$(count_segments "$OUT/easy")" -gt 0 ] && [ "$(count_segments "$OUT/hard")" -gt 0 ]; then
    echo "make-wal-corpus: $OUT/easy ($(count_segments "$OUT/easy") segments) and" \
        "$OUT/hard ($(count_segments "$OUT/hard") segments) already exist; nothing to do"
    exit 0
fi

[ -x "$PGBIN/initdb" ] || { echo "make-wal-corpus: no PostgreSQL at $PGBIN" >&2; exit 1; }
if [ "$(id -u)" -eq 0 ]; then
    as_pg() { runuser -u postgres -- "$@"; }
    PGUSER_OWNER=postgres:postgres
else
    as_pg() { "$@"; }
    PGUSER_OWNER=
fi

started=$SECONDS
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/barnacle-walgen.XXXXXX")
PGDATA=$WORK/data SOCK=$WORK/sock ARCHIVE=$WORK/archive
mkdir -p "$SOCK" "$ARCHIVE"
[ -n "$PGUSER_OWNER" ] && chown -R "$PGUSER_OWNER" "$WORK"
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')

cleanup() {
    if [ -f "$PGDATA/postmaster.pid" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

as_pg "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
wal_level = replica
archive_mode = on
archive_command = 'cp %p $ARCHIVE/%f'
max_wal_size = 2GB
shared_buffers = 256MB
fsync = off
synchronous_commit = off
CONF
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$WORK/log" -w start >/dev/null

psql() { as_pg "$PGBIN/psql" -h "$SOCK" -p "$PORT" -U postgres -X -qAt -v ON_ERROR_STOP=1 "$@"; }
pgbench() { as_pg "$PGBIN/pgbench" -h "$SOCK" -p "$PORT" -U postgres "$@"; }
# The segment the next WAL record goes to.
current_segment() { psql -c "select pg_walfile_name(pg_current_wal_insert_lsn())"; }
# Ends the current segment; prints the name of the segment that held the switch.
switch_segment() { psql -c "select pg_walfile_name(pg_switch_wal())"; }

switch_segment >/dev/null # initdb's segment is left out

# Phase 1, easy: pgbench -i's table creation, data load and vacuum.
easy_first=$(current_segment)
pgbench -i -I dtgv -s "$SCALE" -q postgres 2>&1 | grep -E '^done' || true
easy_last=$(switch_segment)

# Phase 2, hard: index builds, TPC-B with full-page images, random data.
hard_first=$(current_segment)
pgbench -i -I p -s "$SCALE" postgres 2>&1 | grep -E '^done' || true
psql -c "checkpoint"
pgbench -c 4 -j 2 -T "$TPCB_SECONDS" postgres 2>&1 | grep -E '^tps' || true
psql -c "create table r as select md5(random()::text) as a, md5(random()::text) as b
         from generate_series(1, $RANDOM_ROWS)"
psql -c "create index on r (a)"
psql -c "create index on r (b)"
hard_last=$(switch_segment)

# Wait until the archiver has copied the last segment, then stop.
for _ in $(seq 1 600); do
    [ -f "$ARCHIVE/$hard_last" ] && break
    sleep 0.1
done
[ -f "$ARCHIVE/$hard_last" ] || { echo "make-wal-corpus: archiver did not catch up" >&2; exit 1; }
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null

# Sort the archived segments into the corpora by name range (same timeline,
# fixed-width upper-case hex, so string order is WAL order), keeping at most
# MAX_SEGMENTS per corpus, spread evenly over the phase.
pick() { # first last dest
    local first=$1 last=$2 dest=$3 tmp=$OUT/.$3.tmp
    rm -rf "$tmp" && mkdir -p "$tmp"
    local names
    names=$(ls "$ARCHIVE" | segments | awk -v a="$first" -v b="$last" '$0 >= a && $0 <= b')
    local n
    n=$(printf '%s\n' "$names" | grep -c . || true)
    printf '%s\n' "$names" | awk -v n="$n" -v m="$MAX_SEGMENTS" \
        'n <= m || int((NR - 1) * m / n) != int((NR - 2) * m / n)' |
        while read -r f; do cp "$ARCHIVE/$f" "$tmp/$f"; done
    chmod 644 "$tmp"/*
    rm -rf "${OUT:?}/$dest"
    mv "$tmp" "$OUT/$dest"
}
pick "$easy_first" "$easy_last" easy
pick "$hard_first" "$hard_last" hard

echo "make-wal-corpus: easy $easy_first..$easy_last, hard $hard_first..$hard_last" \
    "(generated in $((SECONDS - started)) s)"
# gzip -6 ratio of each corpus: total uncompressed bytes / total compressed bytes.
for kind in easy hard; do
    raw=0 packed=0 n=0
    while read -r size packed_size; do
        raw=$((raw + size)) packed=$((packed + packed_size)) n=$((n + 1))
    done < <(ls "$OUT/$kind" | segments | xargs -P "$(nproc)" -I{} \
        sh -c 'echo $(stat -c %s "$0/{}") $(gzip -6 -c "$0/{}" | wc -c)' "$OUT/$kind")
    awk -v k="$kind" -v n="$n" -v r="$raw" -v p="$packed" -v d="$OUT/$kind" \
        'BEGIN { printf "%-4s %2d segments in %s: gzip -6 ratio %.1fx (%.1f MiB -> %.1f MiB)\n", k, n, d, r / p, r / 1048576, p / 1048576 }'
done
echo "make-wal-corpus: done in $((SECONDS - started)) s"
