#!/usr/bin/env bash
# RADIUS load balancer benchmark: the same load generator, in the same run, through the
# balancer (the cluster VIP) and directly to a backend.
#
#   bench/lb.sh [--quick] [--rounds N] [--devices N] [-c N] [--perf] [--no-build] [--keep] [--out FILE]
#
# Two ironfence cluster members on loopback (pf1 = 127.0.61.1, pf2 = 127.0.61.2, the
# management VIP 127.0.61.100 bound by pf1 with IP_FREEBIND), one private mariadbd both use
# (plain MariaDB: the balancer does not care which database its backends share), the device
# population imported once. Runs, each with ironfence-loadgen at -c N (default 32):
#
#   direct-pf1   to pf1's own address: the MAB handler, no balancer
#   lb-local     to the VIP with pf2 in maintenance: every request ranked and handled
#                in-process on pf1 (the local shortcut)
#   direct-pf2   to pf2's own address
#   lb-remote    to the VIP with pf1 in maintenance: every request ranked on pf1, re-signed
#                and forwarded to pf2's backend port (the hop), the reply re-signed for the
#                switch
#
# The four runs are repeated --rounds times (default 2), interleaved, so that a slow moment of
# a shared machine does not land on one path only; the report gives the mean of the rounds.
# --perf: after the rounds, `perf record -g` of the front (pf1) during an extra lb-remote run
# (not counted), and its top symbols printed.
# Prints req/s and p50 of each, and lb-local / direct-pf1 and lb-remote / direct-pf2 (targets:
# ≥ 90 % of direct throughput, ≤ 50 µs added p50; reported, never asserted). Both members run
# on this machine, so the hop costs the front's and the backend's CPU on the same cores: on
# two machines the remote figure is better, not worse.
#
# Everything listens on 127.0.61.x (loopback) and 127.0.0.1; every process started here is
# stopped by its saved PID and the work directory removed on exit (also on failure).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0
KEEP=0
BUILD=1
DEVICES=100000
CONC=32
ROUNDS=2
PERF=0
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --keep) KEEP=1 ;;
        --no-build) BUILD=0 ;;
        --devices) DEVICES=$2; shift ;;
        -c) CONC=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --perf) PERF=1 ;;
        --out) OUT=$2; shift ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    WARMUP=1s DURATION=3s
else
    WARMUP=3s DURATION=10s
fi

# TEST FIXTURE secrets (this script's own daemons and mariadbd, loopback only).
SECRET='bench-lb-radius-fixture-NOT-FOR-PRODUCTION'
IF_DB_PASS='bench-lb-ironfence-db-fixture-NOT-FOR-PRODUCTION'
WS_PASS='bench-lb-webservices-fixture-NOT-FOR-PRODUCTION'
SST_PASS='bench-lb-sst-fixture-NOT-FOR-PRODUCTION'
NET=127.0.61
VIP=$NET.100

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for p in mariadbd mariadb-install-db mariadb; do
    command -v "$p" >/dev/null || die "$p not found: apt-get install mariadb-server mariadb-client"
done
id mysql >/dev/null 2>&1 || die "no mysql system user (created by mariadb-server)"

PIDS=()
WORK=$(mktemp -d /tmp/ironfence-bench-lb.XXXXXX)
chmod 755 "$WORK"
alive() {
    local s
    s=$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) && [ -n "$s" ] && [ "$s" != Z ]
}
terminate() {
    local pid=$1 grace=${2:-30} i
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$? i
    trap '' INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        terminate "${PIDS[$i]}" 30
    done
    if [ "$KEEP" = 1 ]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

IRONFENCE=$ROOT/target/release/ironfence
LG=$ROOT/target/release/ironfence-loadgen
if [ "$BUILD" = 1 ]; then
    log "building (release)"
    cargo build --release -p ironfence -p ironfence-loadgen >&2
fi

sql() {
    local sock=$1
    shift
    mariadb --no-defaults --socket="$sock" -uroot --batch --skip-column-names --connect-timeout=2 -e "$*"
}

# ---------------------------------------------------------------------------------------------
# The database both members use.
M=$WORK/mariadb
DB_PORT=$("$LG" free-ports 1)
mkdir -p "$M/data" "$M/tmp"
chown -R mysql:mysql "$M"
mariadb-install-db --no-defaults --datadir="$M/data" --user=mysql \
    --auth-root-authentication-method=socket --auth-root-socket-user=root \
    --skip-test-db --skip-name-resolve --tmpdir="$M/tmp" >"$M/install.log" 2>&1 ||
    { tail -n 20 "$M/install.log" >&2; die "mariadb-install-db failed"; }
log "starting a private mariadbd on 127.0.0.1:$DB_PORT"
mariadbd --no-defaults --user=mysql --datadir="$M/data" --socket="$M/mysqld.sock" \
    --port="$DB_PORT" --bind-address=127.0.0.1 --log-error="$M/error.log" \
    --pid-file="$M/mysqld.pid" --tmpdir="$M/tmp" --skip-name-resolve --skip-log-bin \
    --innodb-flush-log-at-trx-commit=2 --performance-schema=OFF --max-connections=200 \
    >/dev/null 2>&1 &
DB_PID=$!
PIDS+=("$DB_PID")
for i in $(seq 1 1200); do
    alive "$DB_PID" || { tail -n 30 "$M/error.log" >&2; die "mariadbd exited during startup"; }
    sql "$M/mysqld.sock" "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.1
done
sql "$M/mysqld.sock" "CREATE DATABASE ironfence CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    CREATE USER 'ironfence'@'127.0.0.1' IDENTIFIED BY '$IF_DB_PASS';
    GRANT ALL PRIVILEGES ON ironfence.* TO 'ironfence'@'127.0.0.1';"

# ---------------------------------------------------------------------------------------------
# Two members. Their pf.conf differ only in the RADIUS ports (pf2: 1912/1913, so that the
# VIP sockets of the two daemons on one machine do not collide); the backend ports are the
# same (18120/18130 on each member's own address).
write_member() {
    local n=$1 auth=$2 acct=$3 dir=$WORK/pf$1
    mkdir -p "$dir/conf" "$dir/state"
    cat >"$dir/conf/pf.conf" <<EOF
[general]
state_dir = $dir/state

[database]
type = mysql
host = 127.0.0.1
port = $DB_PORT
user = ironfence
# TEST FIXTURE password (bench/lb.sh's own mariadbd only).
pass = $IF_DB_PASS
db = ironfence

[radius]
auth_port = $auth
acct_port = $acct

[webservices]
user = bench
# TEST FIXTURE password (bench/lb.sh only): the hop secret is derived from it.
pass = $WS_PASS

[active_active]
galera_replication_username = sst
galera_replication_password = $SST_PASS
password = benchLb1

[maintenance]
cluster_check_interval = 0
EOF
    cat >"$dir/conf/cluster.conf" <<EOF
[CLUSTER]
management_ip = $VIP

[pf1]
management_ip = $NET.1

[pf2]
management_ip = $NET.2
EOF
    cat >"$dir/conf/switches.conf" <<EOF
[default]
require_message_authenticator = yes
VlanMap = Y
registrationVlan = 2
isolationVlan = 3
defaultVlan = 100
guestVlan = 200

[127.0.0.1]
description = benchmark load generator
type = Generic
# TEST FIXTURE secret (bench/lb.sh only, loopback only). Never use it for a real switch.
radiusSecret = $SECRET
EOF
    cp "$ROOT/conf/roles.conf" "$dir/conf/roles.conf"
    chmod 600 "$dir/conf"/*.conf
}
write_member 1 1812 1813
write_member 2 1912 1913

ironfence() {
    local n=$1
    shift
    IRONFENCE_HOSTNAME=pf$n "$IRONFENCE" --conf-dir "$WORK/pf$n/conf" "$@"
}

log "generating and importing $DEVICES devices"
"$LG" seed --devices "$DEVICES" --csv "$WORK/nodes.csv" >/dev/null
ironfence 1 node import "$WORK/nodes.csv" >"$WORK/import.log" 2>&1 ||
    { tail -n 20 "$WORK/import.log" >&2; die "node import failed"; }

# wait_ready ADDR PID LOG: until ADDR answers an Access-Request.
wait_ready() {
    local addr=$1 pid=$2 logfile=$3 i
    for i in $(seq 1 600); do
        alive "$pid" || { tail -n 30 "$logfile" >&2; die "daemon exited during startup"; }
        if LOADGEN_SECRET=$SECRET "$LG" --server "$addr" --label probe -c 1 --devices "$DEVICES" \
            --warmup 0 --requests 1 --timeout 200ms --retries 0 --fail-on-error >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    tail -n 30 "$logfile" >&2
    die "$addr did not answer within 2 min"
}

SERVE=()
for n in 1 2; do
    log "starting pf$n on $NET.$n"
    RUST_LOG=warn IRONFENCE_HOSTNAME=pf$n "$IRONFENCE" --conf-dir "$WORK/pf$n/conf" serve \
        >"$WORK/pf$n/serve.log" 2>&1 &
    SERVE+=("$!")
    PIDS+=("$!")
done
wait_ready "$NET.1:1812" "${SERVE[0]}" "$WORK/pf1/serve.log"
wait_ready "$NET.2:1912" "${SERVE[1]}" "$WORK/pf2/serve.log"

maintenance() { # N on|off
    local flag=--deactivate
    [ "$2" = on ] && flag=--activate
    ironfence "$1" cluster maintenance "$flag" >/dev/null
}

RESULTS=$WORK/results.txt
: >"$RESULTS"
# run LABEL ADDR SERVER_PID [--also-pid ...]
run() {
    local label=$1 addr=$2 pid=$3 line
    shift 3
    log "$label: $addr, c=$CONC, $WARMUP warm-up + $DURATION"
    line=$(LOADGEN_SECRET=$SECRET "$LG" --server "$addr" --label "$label" --devices "$DEVICES" \
        -c "$CONC" --warmup "$WARMUP" --duration "$DURATION" --server-pid "$pid" "$@")
    echo "$line" >>"$RESULTS"
    echo "$line" >&2
}

# Every device seen once through each path first, so the node caches are warm in all runs.
prime() {
    LOADGEN_SECRET=$SECRET "$LG" --server "$1" --label prime --devices "$DEVICES" -c 64 \
        --warmup 0 --requests "$DEVICES" >/dev/null
}

for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS"
    prime "$NET.1:1812"
    run direct-pf1 "$NET.1:1812" "${SERVE[0]}"

    maintenance 2 on
    sleep 3 # pf1 reads pf2's drain flag from its next Status-Server answer (≤ 1 s)
    prime "$VIP:1812"
    run lb-local "$VIP:1812" "${SERVE[0]}"
    maintenance 2 off

    prime "$NET.2:1912"
    run direct-pf2 "$NET.2:1912" "${SERVE[1]}"

    maintenance 1 on
    sleep 3
    prime "$VIP:1812"
    run lb-remote "$VIP:1812" "${SERVE[0]}" --also-pid "backend_pf2=${SERVE[1]}"
    maintenance 1 off
    sleep 3
done

if [ "$PERF" = 1 ]; then
    command -v perf >/dev/null || die "--perf needs perf (linux-perf)"
    maintenance 1 on
    sleep 3
    log "perf: recording pf1 during an extra lb-remote run (not counted)"
    LOADGEN_SECRET=$SECRET "$LG" --server "$VIP:1812" --label perf --devices "$DEVICES" \
        -c "$CONC" --warmup 1s --duration 7s >/dev/null &
    LGP=$!
    PIDS+=("$LGP")
    sleep 1.5
    perf record -g -o "$WORK/perf.data" -p "${SERVE[0]}" -- sleep 5 >/dev/null 2>&1 || log "perf record failed"
    wait "$LGP" || true
    perf report -i "$WORK/perf.data" --stdio --no-children --sort symbol 2>/dev/null |
        grep -E '^ +[0-9]' | head -40 >"$WORK/perf-top.txt" || true
    maintenance 1 off
fi

# ---------------------------------------------------------------------------------------------
field() { # LABEL KEY: the mean over the rounds
    awk -v t="target=$1" -v k="$2" '$1 == t { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == k) { s += a[2]; n++ } } }
        END { if (n) printf (k == "req/s" || k == "errors" ? "%.0f" : "%.3f"), s / n }' "$RESULTS"
}
report() {
    local d_rps d_p50 l_rps l_p50
    echo "## RADIUS load balancer vs direct ($(date -u +%F), $(nproc) CPUs, c=$CONC, $DURATION per run, mean of $ROUNDS rounds, $DEVICES devices, MariaDB)"
    echo
    echo "| run | req/s | p50 ms | p99 ms | errors | front CPU µs/req | backend CPU µs/req |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for l in direct-pf1 lb-local direct-pf2 lb-remote; do
        echo "| $l | $(field "$l" req/s) | $(field "$l" p50_ms) | $(field "$l" p99_ms) | $(field "$l" errors) | $(field "$l" server_cpu_us_per_req) | $(field "$l" backend_pf2_cpu_us_per_req) |"
    done
    echo
    for pair in "lb-local direct-pf1" "lb-remote direct-pf2"; do
        set -- $pair
        l_rps=$(field "$1" req/s) d_rps=$(field "$2" req/s)
        l_p50=$(field "$1" p50_ms) d_p50=$(field "$2" p50_ms)
        awk -v a="$l_rps" -v b="$d_rps" -v p="$l_p50" -v q="$d_p50" -v n="$1" -v m="$2" 'BEGIN {
            r = (b > 0) ? 100 * a / b : 0; dp = (p - q) * 1000
            printf "- %s: %.1f %% of %s throughput (target ≥ 90 %%: %s), p50 %+.0f µs (target ≤ +50 µs: %s)\n",
                n, r, m, (r >= 90 ? "met" : "NOT met"), dp, (dp <= 50 ? "met" : "NOT met") }'
    done
    echo
    echo "Both members share this machine's CPUs (the remote hop runs the front and the backend on the same cores)."
}
report | tee "${OUT:-/dev/null}"
if [ "$PERF" = 1 ] && [ -s "$WORK/perf-top.txt" ]; then
    echo
    echo "### perf: top symbols of the front (pf1) during lb-remote"
    echo '```'
    cat "$WORK/perf-top.txt"
    echo '```'
fi
