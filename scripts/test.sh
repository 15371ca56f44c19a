#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, golden, property, CLI, promtool, live
# exporter (fake API server) and Prometheus end-to-end tests.
# Needs promtool and prometheus on PATH (Debian: apt-get install prometheus) and the
# Python packages helm-python-sdk and kubernetes-validate; .ci/run installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
test -f ../shared/corpus/MANIFEST.md || { echo "error: ../shared/corpus is missing (the corpus lives beside the repo)" >&2; exit 1; }
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
# The Helm chart: lint, render, RBAC and manifest validation (Helm SDK for Python).
python3 tests/chart/test_chart.py
