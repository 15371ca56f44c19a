#!/usr/bin/env bash
# Run every benchmark (issue 6) and write their figures into docs/performance.md.
#
#   benches/run.sh            # the whole suite, about 12-15 minutes on 2 cores
#
# Each bench measures its figure and a baseline in the same process (DESIGN.md §5);
# criterion keeps its estimates under target/criterion, and the benches write their
# facts (series counts, bytes, memory and latency figures) as JSON to $KFE_BENCH_OUT.
# benches/report.py then turns both into the table between the "generated" markers of
# docs/performance.md; the rest of that page (method, profiles) is written by hand.
#
# Sizes: the flatten bench runs 1k, 10k and 100k objects; the scrape figures use
# KFE_BENCH_OBJECTS=50000 synthetic Deployments (1M series); the encoder bench 26k
# corpus objects (~1M series); the live bench 100k objects for memory and 26k for churn
# (100 scrapes idle and 100 under churn, so that p99 is not just the slowest scrape).
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
out="$PWD/target/bench-out"
rm -rf "$out" target/criterion
mkdir -p "$out"
export KFE_BENCH_OUT="$out"

step() { printf '\n=== %s (%ss elapsed)\n' "$1" "$(( $(date +%s) - start ))"; }

step "build"
cargo bench --locked --no-run --benches

step "flatten: 1k, 10k, 100k objects vs serde_json parse"
cargo bench --locked --bench flatten 2>&1 | tee "$out/flatten.log"

step "scrape: 1M series vs memcpy (store bench, 50 000 Deployments)"
KFE_BENCH_OBJECTS=50000 cargo bench --locked --bench store -- 'scrape/' 2>&1 | tee "$out/store.log"

step "encoder: prometheus-client vs pre-rendered"
cargo bench --locked --bench encoder 2>&1 | tee "$out/encoder.log"

step "live: memory and churn against the fake API server"
KFE_CHURN_SCRAPES=${KFE_CHURN_SCRAPES:-100} cargo bench --locked --bench live 2>&1 | tee "$out/live.log"

elapsed=$(( $(date +%s) - start ))
step "report"
python3 benches/report.py --criterion target/criterion --facts "$out" \
    --elapsed "$elapsed" --doc docs/performance.md
echo "docs/performance.md updated; whole run ${elapsed}s"
