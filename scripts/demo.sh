#!/bin/bash
# barnacle's main job on the embedded default (a file:// archive), end to end:
# a throwaway PostgreSQL 15 cluster archives its WAL with `walpush`, is backed
# up online with `barnacle backup` under write load, the backup is restored with
# `barnacle restore --recovery-conf` (restore_command = barnacle's WAL restore),
# and the recovered cluster is compared with the original.
# Usage: scripts/demo.sh [WORKDIR]   (run as root: PostgreSQL runs as 'postgres'; or as a normal user)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
WORK=${1:-$(mktemp -d /tmp/barnacle-demo.XXXXXX)}
mkdir -p "$WORK"; chmod 755 "$WORK"
say() { printf '\n== %s\n' "$*"; }

if [ "$(id -u)" = 0 ]; then PGUSER_OS=postgres; as_pg() { runuser -u postgres -- "$@"; }
else PGUSER_OS=$(id -un); as_pg() { "$@"; }; fi

say "building barnacle (release)"
cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin barnacle
BIN=$WORK/bin; mkdir -p "$BIN"
cp "$ROOT/target/release/barnacle" "$BIN/barnacle"
for name in walpush restore barman-cloud-wal-archive barman-cloud-wal-restore barman-cloud-backup barman-cloud-restore barman-cloud-backup-list; do ln -sf barnacle "$BIN/$name"; done
chmod -R a+rX "$BIN"

ARCHIVE=$WORK/archive
mkdir -p "$ARCHIVE" "$WORK/sock" "$WORK/logs"; chown "$PGUSER_OS" "$ARCHIVE" "$WORK/sock" "$WORK/logs"
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
PSQL() { as_pg "$PGBIN/psql" -h "$WORK/sock" -p "$PORT" -U postgres -qAt "$@"; }
cleanup() { for d in primary replica; do [ -f "$WORK/$d/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$WORK/$d" -m immediate stop >/dev/null 2>&1; done; true; }
trap cleanup EXIT

say "primary: initdb, archive_command = walpush file://$ARCHIVE demo %p"
install -d -o "$PGUSER_OS" "$WORK/primary"
as_pg "$PGBIN/initdb" -D "$WORK/primary" -A trust -U postgres >/dev/null
cat >> "$WORK/primary/postgresql.conf" <<CONF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$WORK/sock'
wal_level = replica
archive_mode = on
archive_command = '$BIN/walpush file://$ARCHIVE demo %p'
max_wal_size = 256MB
CONF
as_pg "$PGBIN/pg_ctl" -D "$WORK/primary" -l "$WORK/logs/primary.log" -w start >/dev/null

say "online base backup with barnacle backup (gzip, streamed to file://$ARCHIVE) under pgbench load"
as_pg "$PGBIN/pgbench" -h "$WORK/sock" -p "$PORT" -U postgres -i -s 5 -q postgres 2>/dev/null
as_pg "$PGBIN/pgbench" -h "$WORK/sock" -p "$PORT" -U postgres -c 2 -T 5 postgres >/dev/null 2>&1 &
LOAD=$!
"$BIN/barnacle" backup --immediate-checkpoint -h "$WORK/sock" -p "$PORT" -U postgres "file://$ARCHIVE" demo
wait $LOAD
"$BIN/barnacle" list "file://$ARCHIVE" demo

say "write load: pgbench for 10 s, then a marker row"
as_pg "$PGBIN/pgbench" -h "$WORK/sock" -p "$PORT" -U postgres -c 2 -T 10 postgres | grep -E '^(tps|number of transactions actually)'
PSQL -c "create table demo_marker as select now() as at, (select count(*) from pgbench_history) as history_rows"
LAST=$(PSQL -c "select pg_walfile_name(pg_switch_wal())")
for _ in $(seq 1 120); do
  [ "$(PSQL -c "select coalesce(last_archived_wal,'') >= '$LAST' from pg_stat_archiver")" = t ] && break; sleep 0.5
done
EXPECTED=$(PSQL -c "select history_rows from demo_marker")
PSQL -c "select 'archived: ' || archived_count || ' files, failed: ' || failed_count from pg_stat_archiver"
as_pg "$PGBIN/pg_ctl" -D "$WORK/primary" -m fast -w stop >/dev/null
du -sh "$ARCHIVE/demo/wals" | sed 's/^/WAL archive size: /'
echo "archived WAL objects: $(find "$ARCHIVE/demo/wals" -type f | wc -l)"
"$BIN/barnacle" status "file://$ARCHIVE" demo

say "restore: barnacle restore --recovery-conf latest (restore_command = barnacle wal-restore)"
"$BIN/barnacle" restore --recovery-conf "file://$ARCHIVE" demo latest "$WORK/replica"
chown -R "$PGUSER_OS" "$WORK/replica"; chmod 700 "$WORK/replica"
cat >> "$WORK/replica/postgresql.conf" <<CONF
archive_mode = off
CONF
grep restore_command "$WORK/replica/postgresql.auto.conf"
as_pg "$PGBIN/pg_ctl" -D "$WORK/replica" -l "$WORK/logs/replica.log" -w -t 120 start >/dev/null
for _ in $(seq 1 240); do [ "$(PSQL -c 'select pg_is_in_recovery()' 2>/dev/null)" = f ] && break; sleep 0.5; done
GOT=$(PSQL -c "select history_rows from demo_marker")
ACTUAL=$(PSQL -c "select count(*) from pgbench_history where true")
echo "recovered: marker says $GOT history rows; table has $ACTUAL (primary had $EXPECTED)"
if [ "$GOT" = "$EXPECTED" ] && [ "$ACTUAL" = "$EXPECTED" ]; then
  say "OK: every transaction came back from the archive ($WORK)"
else
  say "FAILED: recovered data differs (logs in $WORK)"; exit 1
fi
