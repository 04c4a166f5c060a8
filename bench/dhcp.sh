#!/usr/bin/env bash
# DHCP benchmark: DORA/s (DISCOVER → OFFER → REQUEST → ACK completed per second) of the
# registration network's DHCP server, with the project's generator (ironfence-loadgen dhcp,
# 64 clients in flight, every OFFER/ACK verified, duplicates counted).
#
#   bench/dhcp.sh [--clients N] [--debug]
#
#   --clients N  clients per measured run (default 800; the lab's pool holds ~1,990, and the
#                Galera case runs twice on one pool)
#   --debug      use the debug build (faster to build, slower to run; figures not comparable)
#
# Runs three cases, each in network namespaces created and removed by the test harness
# (ironfence_testkit::netns::Lab; nothing leaves them):
#   sqlite-1-server    one server on SQLite (bench_dora_one_server_sqlite, dhcp_e2e.rs)
#   galera-2-servers   two servers answering every broadcast, 3-node Galera
#   galera-1-server    the same cluster with one DHCP server (bench_dora_galera_two_servers_then_one)
# Figures are printed, never asserted (the runs do check: every client bound once, 0
# duplicates). Needs root, iproute2, iputils-ping, mariadb-server, galera-4, keepalived.
# See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

clients=800
profile=(--release)
while (($#)); do
    case "$1" in
        --clients) clients="$2"; shift 2 ;;
        --debug) profile=(); shift ;;
        *) echo "usage: $0 [--clients N] [--debug]" >&2; exit 2 ;;
    esac
done

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
IRONFENCE_BENCH_DHCP_CLIENTS="$clients" cargo nextest run "${profile[@]}" --locked -p ironfence \
    --test dhcp_e2e --test dhcp_galera --run-ignored only --no-capture --test-threads 1 \
    -E 'test(/^bench_/)' 2>&1 | tee "$out" | grep -E '^BENCH|PASS|FAIL' || true

echo
echo "| case | clients | bound | DORA/s | NAKs | duplicates |"
echo "|---|---|---|---|---|---|"
grep -E '^BENCH [^ ]+ dhcp ' "$out" | while read -r _ label rest; do
    get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $rest"; }
    echo "| $label | $(get clients) | $(get bound) | $(get dora_per_s) | $(get naks) | $(get duplicate_addresses) |"
done
echo
echo "perfdhcp lines (Debian kea-admin) are printed above as they came (BENCH perfdhcp ...)."
echo "reference (not measured here): Kea 2.0 leases/s, ISC KB: memfile 11,686 single-threaded /"
echo "18,977 multi-threaded; MySQL 2,559 / 10,135; PostgreSQL 2,396 / 7,441."
