#!/usr/bin/env bash
# Registration-network DNS benchmark: queries/s answered by ironfence's responder, and by
# dnsmasq configured to do the same job (`--address=/#/<portal> --local=/#/`: every name → the
# portal, other types NODATA, though without the SOA ironfence adds),
# driven by the real `dnsperf` (Debian package dnsperf).
#
#   bench/dns.sh [--quick] [--clients N] [--no-build] [--out FILE] [--keep]
#
#   --quick      5 s per run (default 20 s)
#   --clients N  dnsperf clients (sockets), default 4; 1000 queries outstanding at most
#   --no-build   use target/release/ironfence as it is (default: cargo build --release)
#   --out FILE   also write the Markdown report to FILE
#   --keep       keep the work directory
#
# The query mix: 10,000 distinct names, 80 % A, 20 % AAAA (a device's own mix: it asks both),
# so the figures cover the portal answer and NODATA + SOA. Everything runs on loopback
# 127.0.72.x (ironfence .1, dnsmasq .2) on port 5372, in a temporary directory; every process
# started here is stopped by its saved PID on exit. Figures are printed, never asserted: the
# exit status is 0 whenever the benchmark ran. See docs/benchmarks.md.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=20
CLIENTS=4
BUILD=1
OUT=""
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) DURATION=5 ;;
        --clients) CLIENTS=$2; shift ;;
        --no-build) BUILD=0 ;;
        --out) OUT=$2; shift ;;
        --keep) KEEP=1 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

NET=127.0.72
IF_IP=$NET.1
DM_IP=$NET.2
PORT=5372
# TEST FIXTURE secret (this script's own daemon, loopback only).
SECRET='bench-dns-radius-fixture-NOT-FOR-PRODUCTION'

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
for p in dnsperf dnsmasq dig; do
    command -v "$p" >/dev/null || die "$p not found: apt-get install dnsperf dnsmasq-base dnsutils"
done

PIDS=()
WORK=$(mktemp -d /tmp/ironfence-bench-dns.XXXXXX)
cleanup() {
    local rc=$? i
    trap '' INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill "${PIDS[$i]}" 2>/dev/null || true
        wait "${PIDS[$i]}" 2>/dev/null || true
    done
    if [ "$KEEP" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

IRONFENCE=$ROOT/target/release/ironfence
if [ "$BUILD" = 1 ]; then
    log "building (release)"
    cargo build --release -p ironfence >&2
fi
[ -x "$IRONFENCE" ] || die "$IRONFENCE missing (drop --no-build)"

# The query file.
for i in $(seq 1 10000); do
    if ((i % 5 == 0)); then echo "host$i.example.com AAAA"; else echo "host$i.example.com A"; fi
done >"$WORK/queries"

# ironfence: one registration interface whose address is the loopback alias.
mkdir -p "$WORK/conf"
cat >"$WORK/conf/pf.conf" <<EOF
[general]
state_dir = state
[database]
type = sqlite
[radius]
listen = $IF_IP
auth_port = 41812
acct_port = 41813
[metrics]
listen = $IF_IP:49101
[interface bench1]
ip = $IF_IP
mask = 255.255.255.0
type = internal
enforcement = vlan
[dns]
port = $PORT
EOF
printf '[127.0.0.1]\nradiusSecret = %s\nregistrationVlan = 2\n' "$SECRET" >"$WORK/conf/switches.conf"
chmod 600 "$WORK/conf/"*
RUST_LOG=warn "$IRONFENCE" --conf-dir "$WORK/conf" serve >"$WORK/ironfence.log" 2>&1 &
PIDS+=($!)
IF_PID=$!

dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
    --pid-file= --listen-address="$DM_IP" --port="$PORT" --address="/#/$DM_IP" --local=/#/ \
    --cache-size=0 >"$WORK/dnsmasq.log" 2>&1 &
PIDS+=($!)
DM_PID=$!

ready() {
    local ip=$1 i
    for ((i = 0; i < 100; i++)); do
        [ "$(dig @"$ip" -p "$PORT" +short +time=1 +tries=1 ready.test 2>/dev/null)" = "$ip" ] && return 0
        sleep 0.1
    done
    return 1
}
ready "$IF_IP" || { cat "$WORK/ironfence.log" >&2; die "ironfence does not answer on $IF_IP:$PORT"; }
ready "$DM_IP" || { cat "$WORK/dnsmasq.log" >&2; die "dnsmasq does not answer on $DM_IP:$PORT"; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME IP PID → one Markdown row
run() {
    local name=$1 ip=$2 pid=$3 out before after qps lat lost hz cpu codes us
    before=$(cpu_ticks "$pid")
    out=$(dnsperf -s "$ip" -p "$PORT" -d "$WORK/queries" -l "$DURATION" -c "$CLIENTS" -q 1000 2>&1)
    after=$(cpu_ticks "$pid")
    echo "$out" >"$WORK/$name.dnsperf"
    qps=$(echo "$out" | awk '/Queries per second:/ {printf "%.0f", $4}')
    lat=$(echo "$out" | awk '/Average Latency/ {printf "%.3f", $4 * 1000}')
    lost=$(echo "$out" | awk '/Queries lost:/ {print $3}')
    codes=$(echo "$out" | sed -n 's/.*Response codes: *//p')
    hz=$(getconf CLK_TCK)
    cpu=$(awk -v t=$((after - before)) -v hz="$hz" -v d="$DURATION" 'BEGIN {printf "%.0f", 100 * t / hz / d}')
    us=$(awk -v c="$cpu" -v q="$qps" 'BEGIN {if (q > 0) printf "%.1f", c / 100 / q * 1e6; else print "-"}')
    echo "| $name | $qps | $lat | $lost | $cpu % | $us | $codes |"
}

log "ironfence: dnsperf -c $CLIENTS for ${DURATION}s"
ROW_IF=$(run ironfence "$IF_IP" "$IF_PID")
log "dnsmasq: dnsperf -c $CLIENTS for ${DURATION}s"
ROW_DM=$(run dnsmasq "$DM_IP" "$DM_PID")

REPORT=$(cat <<EOF
\`bench/dns.sh$([ "$DURATION" = 5 ] && echo " --quick") --clients $CLIENTS\` — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, commit $(git rev-parse --short HEAD)

| server | queries/s | avg latency (ms) | unanswered | server CPU | CPU µs/query | response codes |
| --- | --- | --- | --- | --- | --- | --- |
$ROW_IF
$ROW_DM

Mix: 10,000 names, 80 % A (→ portal), 20 % AAAA (→ NODATA + SOA); dnsperf $CLIENTS clients,
1000 outstanding, ${DURATION} s per server, loopback; server CPU = user + system time of the
server process over the run (100 % = one core); "unanswered" is dnsperf's "lost", which
includes the queries still in flight when the run stops. On a 2-CPU machine dnsperf and the
server share the cores, so queries/s is largely the generator's ceiling; CPU µs/query is the
server's own cost.
EOF
)
echo "$REPORT"
[ -n "$OUT" ] && echo "$REPORT" >"$OUT"
exit 0
