#!/bin/sh
# Admin API benchmark: device search latency (p50/p99) over 100k devices through the real
# HTTP listener, on SQLite and on a real MariaDB (testkit starts mariadbd), with same-run
# baselines (the same search in process, and an empty JSON answer over the same connection).
# Listens on 127.0.82.1 only. Results: docs/benchmarks.md ("Admin API: device search").
#
#   bench/admin_api.sh                      # both backends
#   IRONFENCE_BENCH_BACKENDS=sqlite bench/admin_api.sh
set -eu
cd "$(dirname "$0")/.."
exec cargo nextest run --release -p ironfence-server --run-ignored ignored-only \
    --no-capture admin_api_node_search_bench
