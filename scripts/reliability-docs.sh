#!/usr/bin/env bash
# Publishes what the reliability tests recorded (integration/reliability_summary.rs renders it
# into DIR as they run): DIR/reliability.md becomes docs/reliability.md, and DIR/readme-section.md
# replaces what README.md holds between its reliability-summary markers (both rendered again
# first, so that records written after the tests, such as scripts/fuzz.sh's, are in).
# scripts/test.sh runs it after a full, successful run, .ci/run again after the fuzzing; by hand:
#   BARNACLE_RELIABILITY_DIR=$PWD/target/reliability cargo test --test integration -- faults:: exhaustion:: bad_input:: security::
#   scripts/reliability-docs.sh target/reliability
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-${BARNACLE_RELIABILITY_DIR:-target/reliability}}"
dir="$(cd "$dir" && pwd)"
# Render again from every record in DIR, those written outside the test binary included
# (scripts/fuzz.sh appends records-fuzz.jsonl after the tests).
BARNACLE_RELIABILITY_DIR="$dir" cargo test -q --test integration -- --ignored --exact \
  reliability_summary::render_pages >/dev/null
for f in reliability.md readme-section.md; do
  [ -s "$dir/$f" ] || { echo "reliability-docs.sh: no $dir/$f (did the reliability tests run?)" >&2; exit 1; }
done
begin='<!-- reliability-summary:begin -->'
end='<!-- reliability-summary:end -->'
grep -qF "$begin" README.md && grep -qF "$end" README.md \
  || { echo "reliability-docs.sh: README.md lacks the reliability-summary markers" >&2; exit 1; }
cp "$dir/reliability.md" docs/reliability.md
awk -v section="$dir/readme-section.md" -v begin="$begin" -v end="$end" '
  index($0, begin) { print; while ((getline line < section) > 0) print line; skip = 1; next }
  index($0, end) { skip = 0 }
  !skip { print }
' README.md > README.md.reliability-tmp
mv README.md.reliability-tmp README.md
echo "reliability-docs.sh: docs/reliability.md and README.md updated from $dir"
