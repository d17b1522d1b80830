#!/usr/bin/env bash
# Fuzzes barnacle's parsers and restore path for a bounded time per target (issue 8, part 5):
# the WAL-name parser, the backup.info reader (Python literals included), the retention policy
# parser and the tar/decompression path of restore. Fails on any crash, hang or OOM; the input
# that caused it is left in fuzz/artifacts/<target>/ (replay: fuzz/target/<triple>/release/<target> FILE).
#
#   scripts/fuzz.sh                         # every target, FUZZ_SECONDS (20) each: what CI runs
#   FUZZ_SECONDS=600 scripts/fuzz.sh wal_name   # one target, longer
#
# Runs on stable Rust: the fuzz crate (fuzz/, its own workspace) is built with plain `cargo build`
# and the SanitizerCoverage flags cargo-fuzz would pass (no sanitizer: libFuzzer's coverage,
# crash, timeout and RSS checks; Rust's own bounds and overflow checks are on for barnacle), so
# neither nightly nor `cargo install cargo-fuzz` is needed. With nightly and cargo-fuzz, the same
# crate works as usual: `cargo +nightly fuzz run wal_name`.
#
# The committed seed corpora (fuzz/corpus/<target>/) are read, never written: new inputs go to
# fuzz/target/corpus/<target>/. Each target's figures are appended as one JSON line in the
# reliability summary's record format (integration/reliability_summary.rs) to
# $BARNACLE_RELIABILITY_DIR/records-fuzz.jsonl (default target/reliability), replacing the
# previous run's; the summary page shows them when it is rendered from that directory.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
rss_mb=${FUZZ_RSS_MB:-2048}
timeout_s=${FUZZ_TIMEOUT:-10}
all=(wal_name backup_info retention_policy restore_tar)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

triple=$(rustc -vV | sed -n 's/^host: //p')
# cargo-fuzz's instrumentation; --target keeps it off build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cforce-frame-pointers=yes"
export CARGO_TARGET_DIR=fuzz/target
start=$SECONDS
cargo build --release --locked --manifest-path fuzz/Cargo.toml --target "$triple" \
  $(printf -- '--bin %s ' "${targets[@]}")
echo "scripts/fuzz.sh: built in $((SECONDS - start)) s"

records=${BARNACLE_RELIABILITY_DIR:-target/reliability}
mkdir -p "$records"
: >"$records/records-fuzz.jsonl" # this run's figures only
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# All targets at once, one process each (libFuzzer is single-threaded): on CI's two cores the
# wall time is FUZZ_SECONDS, not four times it.
pids=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/target/corpus/$t" "fuzz/artifacts/$t"
  FUZZ_SCRATCH=$scratch "fuzz/target/$triple/release/$t" "fuzz/target/corpus/$t" "fuzz/corpus/$t" \
    -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$rss_mb" \
    -timeout="$timeout_s" -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 \
    >"$scratch/$t.log" 2>&1 &
  pids+=($!)
done
failed=()
for i in "${!targets[@]}"; do
  t=${targets[$i]}
  log=$scratch/$t.log
  code=0
  wait "${pids[$i]}" || code=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  seeds=$(find "fuzz/corpus/$t" -type f | wc -l)
  if [ "$code" -eq 0 ]; then
    crashes=0
    result="no crash, hang or OOM in ${seconds} s"
  else
    crashes=1
    failed+=("$t")
    result="FAILED (exit $code): $(grep -m1 -E 'ERROR: libFuzzer|panicked|deadly signal|timeout|out-of-memory' "$log" | tr -d '"\\[:cntrl:]' || true)"
    tail -40 "$log" >&2
  fi
  echo "scripts/fuzz.sh: $t: ${execs:-0} executions in ${seconds} s, ${seeds} seeds, crashes ${crashes}"
  printf '{"area":"fuzzing","kind":"%s","case":"libFuzzer %s s from %s committed seeds","injected":%s,"exit":%s,"barman_exit":null,"result":"%s","verified":0,"wal_lost":0,"corrupt":%s,"scanned":0,"leaked":0}\n' \
    "$t" "$seconds" "$seeds" "${execs:-0}" "$code" "$result" "$crashes" >>"$records/records-fuzz.jsonl"
done
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  echo "scripts/fuzz.sh: crash in ${failed[*]}: inputs in fuzz/artifacts/" >&2
  exit 1
fi
