#!/usr/bin/env bash
# MAB benchmark, ironfence vs FreeRADIUS 3.2 (Debian package), side by side, one command.
#
#   bench/mab.sh [--quick] [--pin] [--no-audit] [--devices N] [--out FILE] [--keep]
#
#   --quick      3 s steps after 1 s warm-up, 200,000 requests for the RSS step (default:
#                10 s steps after 3 s warm-up, 1,000,000 requests)
#   --pin        server on CPU 0, load generator on CPU 1 (default: nobody pinned)
#   --no-audit   diagnostic: ironfence with audit_log = disabled (default: its production
#                default, one audit record per request)
#   --devices N  device population (default 100000)
#   --no-build   use the binaries already in target/release (default: cargo build --release)
#   --out FILE   also write the Markdown report to FILE
#   --keep       keep the work directory (configs, logs, databases) for inspection
#
# Everything runs on 127.0.0.1 with free ports, in a temporary work directory. Every process
# started here is stopped (by its saved PID) and the work directory removed on exit, also on
# failure or Ctrl-C. Targets are reported as met / NOT met, never asserted: the exit status is
# 0 whenever the benchmark itself ran. See docs/benchmarks.md.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0
PIN=0
KEEP=0
AUDIT=enabled
BUILD=1
DEVICES=100000
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --pin) PIN=1 ;;
        --no-audit) AUDIT=disabled ;;
        --no-build) BUILD=0 ;;
        --keep) KEEP=1 ;;
        --devices) DEVICES=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$QUICK" = 1 ]; then
    WARMUP=1s DURATION=3s TOTAL=200000
else
    WARMUP=3s DURATION=10s TOTAL=1000000
fi
CONCURRENCIES=(1 32 256)
# TEST FIXTURE secret, used only between processes of this script on 127.0.0.1.
SECRET='bench-test-fixture-secret-NOT-FOR-PRODUCTION'
export LOADGEN_SECRET=$SECRET # the load generator reads it from the environment, not argv
FREERADIUS=/usr/sbin/freeradius

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -x "$FREERADIUS" ] || die "$FREERADIUS not found: apt-get install freeradius"
if [ "$PIN" = 1 ]; then
    command -v taskset >/dev/null || die "--pin needs taskset (util-linux)"
    [ "$(nproc)" -ge 2 ] || die "--pin needs 2 CPUs"
fi

# ---------------------------------------------------------------------------------------------
# Process bookkeeping and cleanup
PIDS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ironfence-bench.XXXXXX")
cleanup() {
    local rc=$?
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$KEEP" = 1 ]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stop_pid PID: SIGTERM, wait, forget.
stop_pid() {
    local pid=$1 p keep=()
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do
        [ "$p" = "$pid" ] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

# ---------------------------------------------------------------------------------------------
# Build
IRONFENCE=$ROOT/target/release/ironfence
LG=$ROOT/target/release/ironfence-loadgen
if [ "$BUILD" = 1 ]; then
    log "building (release)"
    cargo build --release -p ironfence -p ironfence-loadgen >&2
fi
[ -x "$IRONFENCE" ] && [ -x "$LG" ] || die "$IRONFENCE or $LG missing: build them first"

SERVER_PREFIX=()
LG_PIN=()
if [ "$PIN" = 1 ]; then
    SERVER_PREFIX=(taskset -c 0)
    LG_PIN=(--cpu 1)
fi

RESULTS=$WORK/results.txt
: >"$RESULTS"

# wait_ready PORT PID NAME LOGFILE: until one verified Access-Accept comes back.
wait_ready() {
    local port=$1 pid=$2 name=$3 logfile=$4 i
    for i in $(seq 1 150); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$logfile" >&2 || true
            die "$name exited during startup (log above)"
        fi
        if "$LG" --server "127.0.0.1:$port" --label probe -c 1 \
            --warmup 0 --requests 1 --timeout 200ms --retries 0 --fail-on-error >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    tail -n 30 "$logfile" >&2 || true
    die "$name did not answer on 127.0.0.1:$port within 30 s"
}

# loadgen LABEL PORT PID ARGS...: one run; its result line goes to stdout and $RESULTS.
loadgen() {
    local label=$1 port=$2 pid=$3 line
    shift 3
    line=$("$LG" --server "127.0.0.1:$port" --label "$label" \
        --devices "$DEVICES" --server-pid "$pid" "${LG_PIN[@]}" "$@")
    echo "$line" >>"$RESULTS"
    echo "$line" >&2
}

# sent_so_far LABEL: requests sent to LABEL by the runs so far (warm-ups included).
sent_so_far() {
    awk -v t="target=$1" '$1 == t { for (i = 2; i <= NF; i++) if ($i ~ /^sent_total=/) { split($i, a, "="); s += a[2] } } END { print s + 0 }' "$RESULTS"
}

# steps LABEL PORT PID: the concurrency steps, then enough requests to reach $TOTAL.
steps() {
    local label=$1 port=$2 pid=$3 c sent rest
    for c in "${CONCURRENCIES[@]}"; do
        log "$label: c=$c, ${WARMUP} warm-up + ${DURATION}"
        loadgen "$label" "$port" "$pid" -c "$c" --warmup "$WARMUP" --duration "$DURATION"
    done
    sent=$(sent_so_far "$label")
    rest=$((TOTAL - sent))
    [ "$rest" -ge 10000 ] || rest=10000 # the RSS reading comes with this run
    log "$label: $sent requests so far, $rest more at c=32 to reach $TOTAL, then RSS"
    loadgen "$label-total" "$port" "$pid" -c 32 --warmup 0 --requests "$rest"
}

# ---------------------------------------------------------------------------------------------
# Devices
log "generating $DEVICES devices"
"$LG" seed --devices "$DEVICES" --csv "$WORK/nodes.csv" --freeradius-users "$WORK/mab_users"

mapfile -t PORTS < <("$LG" free-ports 5)
[ "${#PORTS[@]}" = 5 ] || die "could not find free ports"
IF_AUTH=${PORTS[0]} IF_ACCT=${PORTS[1]} IF_METRICS=${PORTS[2]} FR_AUTH=${PORTS[3]} NULL_PORT=${PORTS[4]}

# ---------------------------------------------------------------------------------------------
# ironfence
IFD=$WORK/ironfence
mkdir -p "$IFD/conf" "$IFD/state"
cat >"$IFD/conf/pf.conf" <<EOF
[general]
state_dir = $IFD/state

[database]
type = sqlite

[radius]
listen = 127.0.0.1
auth_port = $IF_AUTH
acct_port = $IF_ACCT
audit_log = $AUDIT

[metrics]
listen = 127.0.0.1:$IF_METRICS
EOF
cat >"$IFD/conf/switches.conf" <<EOF
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
# TEST FIXTURE secret (bench/mab.sh only, loopback only). Never use it for a real switch.
radiusSecret = $SECRET
require_message_authenticator = yes
EOF
cp "$ROOT/conf/roles.conf" "$IFD/conf/roles.conf"

log "ironfence: checkup and import"
"$IRONFENCE" --conf-dir "$IFD/conf" checkup >&2 || die "ironfence checkup failed"
"$IRONFENCE" --conf-dir "$IFD/conf" node import "$WORK/nodes.csv" >&2

log "ironfence: starting on 127.0.0.1:$IF_AUTH"
"${SERVER_PREFIX[@]}" "$IRONFENCE" --conf-dir "$IFD/conf" serve >"$IFD/serve.log" 2>&1 &
IF_PID=$!
PIDS+=("$IF_PID")
wait_ready "$IF_AUTH" "$IF_PID" ironfence "$IFD/serve.log"
steps ironfence "$IF_AUTH" "$IF_PID"
IF_METRICS_TEXT=""
if command -v curl >/dev/null; then
    IF_METRICS_TEXT=$(curl -fsS "http://127.0.0.1:$IF_METRICS/metrics" 2>/dev/null |
        grep -E '^ironfence_(radius_requests|radius_replies|radius_dropped|audit_records|store_errors)_total' || true)
fi
IF_METRIC_REQUESTS=$(awk '/^ironfence_radius_requests_total/ && /port="auth"/ { s += $NF } END { if (s) printf "%d", s }' <<<"$IF_METRICS_TEXT")
stop_pid "$IF_PID"
IF_DB_MB=$(du -cm "$IFD/state"/ironfence.db* 2>/dev/null | awk 'END { print $1 }')

# ---------------------------------------------------------------------------------------------
# FreeRADIUS 3.2 (Debian package), lean configuration written from scratch
FRD=$WORK/freeradius
mkdir -p "$FRD/raddb" "$FRD/run" "$FRD/log"
cp "$WORK/mab_users" "$FRD/raddb/mab_users"
: >"$FRD/raddb/dictionary" # the package's dictionaries in /usr/share/freeradius are loaded anyway
cat >"$FRD/raddb/radiusd.conf" <<EOF
# Lean FreeRADIUS 3.2 MAB server for bench/mab.sh (see docs/benchmarks.md).
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = $FRD/log
raddbdir = $FRD/raddb
radacctdir = \${logdir}/radacct
name = freeradius
confdir = \${raddbdir}
modconfdir = \${confdir}/mods-config
certdir = \${confdir}/certs
cadir = \${confdir}/certs
run_dir = $FRD/run
db_dir = \${raddbdir}
libdir = /usr/lib/freeradius
pidfile = \${run_dir}/\${name}.pid
correct_escapes = true
max_request_time = 30
cleanup_delay = 5
# Default 16384: requests are tracked for cleanup_delay; raised as in the research baseline.
max_requests = 131072
hostname_lookups = no
log {
	destination = files
	colourise = no
	file = \${logdir}/radius.log
	auth = no
	auth_badpass = no
	auth_goodpass = no
}
security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}
thread pool {
	start_servers = 5
	max_servers = 32
	min_spare_servers = 3
	max_spare_servers = 10
	max_requests_per_server = 0
	auto_limit_acct = no
}
modules {
	pap {
		normalise = yes
	}
	files mab_users {
		filename = \${raddbdir}/mab_users
		key = "%{User-Name}"
	}
}
client bench {
	ipaddr = 127.0.0.1
	# TEST FIXTURE secret (bench/mab.sh only, loopback only).
	secret = $SECRET
	require_message_authenticator = yes
	nas_type = other
}
server mab {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = $FR_AUTH
		recv_buff = 4194304
	}
	authorize {
		mab_users
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
	}
	post-auth {
		# 3.2.1 predates the BlastRADIUS changes and signs Access-Accepts only on request:
		# ask for a Message-Authenticator so both servers send (and the generator verifies)
		# the same protection.
		update reply {
			&Message-Authenticator := 0x00000000000000000000000000000000
		}
	}
}
EOF
chmod -R go-w "$FRD"

log "FreeRADIUS: starting on 127.0.0.1:$FR_AUTH"
"${SERVER_PREFIX[@]}" "$FREERADIUS" -f -d "$FRD/raddb" -l "$FRD/log/freeradius.log" >"$FRD/log/stdout.log" 2>&1 &
FR_PID=$!
PIDS+=("$FR_PID")
wait_ready "$FR_AUTH" "$FR_PID" FreeRADIUS "$FRD/log/freeradius.log"
steps freeradius "$FR_AUTH" "$FR_PID"
FR_CONFLICTS=$(grep -c 'conflicting packet' "$FRD/log/freeradius.log" || true)
stop_pid "$FR_PID"

# ---------------------------------------------------------------------------------------------
# Null responder: the load generator's ceiling
log "null responder: c=32"
"${SERVER_PREFIX[@]}" "$LG" null-responder --port "$NULL_PORT" --vlan 100 >"$WORK/null.log" 2>&1 &
NULL_PID=$!
PIDS+=("$NULL_PID")
wait_ready "$NULL_PORT" "$NULL_PID" null-responder "$WORK/null.log"
loadgen null "$NULL_PORT" "$NULL_PID" -c 32 --warmup "$WARMUP" --duration "$DURATION" --expect-vlan 100
stop_pid "$NULL_PID"

# ---------------------------------------------------------------------------------------------
# Report
# get LABEL C FIELD: a field of the result line of LABEL at concurrency C ("" if none).
get() {
    awk -v t="target=$1" -v c="c=$2" -v f="$3" '$1 == t && $2 == c {
        for (i = 3; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == f) print substr($i, n + 1) } }' "$RESULTS" | tail -n 1
}
# calc EXPR: floating-point arithmetic/comparison with awk ("n/a" if an operand is missing).
calc() { awk "BEGIN { print ($1) }" 2>/dev/null || echo n/a; }
# fmt_int N: 12345.6 -> 12,346
fmt_int() {
    awk -v v="$1" 'BEGIN {
        if (v == "" || v == "nan") { print "n/a"; exit }
        s = sprintf("%.0f", v); out = ""
        while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
        print s out }'
}
verdict() { if [ "$(calc "$1")" = 1 ]; then echo met; else echo "**NOT met**"; fi; }

COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$ROOT" status --porcelain 2>/dev/null | head -c1)
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
PLACEMENT="server and load generator unpinned (both share all CPUs)"
[ "$PIN" = 1 ] && PLACEMENT="server pinned to CPU 0, load generator to CPU 1"

{
    echo "## MAB benchmark: ironfence vs FreeRADIUS $("$FREERADIUS" -v 2>/dev/null | awk '/^radiusd: FreeRADIUS Version/ { sub(",", "", $4); print $4; exit }')"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ), commit $COMMIT${DIRTY:+ (with uncommitted changes)}"
    echo "- machine: $(nproc) CPUs, $CPU_MODEL, kernel $(uname -r), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "- $DEVICES devices, ${WARMUP} warm-up + ${DURATION} per step, $PLACEMENT, ironfence audit log $AUDIT"
    echo
    echo "| system | concurrency | req/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/req (user+sys) | server cores | RSS MB (anon / file) | errors |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for sys in ironfence freeradius; do
        for c in "${CONCURRENCIES[@]}"; do
            echo "| $sys | $c | $(fmt_int "$(get "$sys" "$c" req/s)") | $(get "$sys" "$c" p50_ms) | $(get "$sys" "$c" p99_ms) | $(get "$sys" "$c" p999_ms) | $(get "$sys" "$c" server_cpu_us_per_req) ($(get "$sys" "$c" server_user_us_per_req)+$(get "$sys" "$c" server_sys_us_per_req)) | $(get "$sys" "$c" server_cpu_cores) | $(get "$sys" "$c" server_rss_mb) ($(get "$sys" "$c" server_rss_anon_mb) / $(get "$sys" "$c" server_rss_file_mb)) | $(get "$sys" "$c" errors) |"
        done
    done
    echo "| null responder (generator ceiling) | 32 | $(fmt_int "$(get null 32 req/s)") | $(get null 32 p50_ms) | $(get null 32 p99_ms) | $(get null 32 p999_ms) | $(get null 32 server_cpu_us_per_req) ($(get null 32 server_user_us_per_req)+$(get null 32 server_sys_us_per_req)) | $(get null 32 server_cpu_cores) | $(get null 32 server_rss_mb) ($(get null 32 server_rss_anon_mb) / $(get null 32 server_rss_file_mb)) | $(get null 32 errors) |"
    echo
    echo "| concurrency | ironfence req/s | FreeRADIUS req/s | ironfence / FreeRADIUS |"
    echo "| ---: | ---: | ---: | ---: |"
    for c in "${CONCURRENCIES[@]}"; do
        a=$(get ironfence "$c" req/s)
        b=$(get freeradius "$c" req/s)
        echo "| $c | $(fmt_int "$a") | $(fmt_int "$b") | $(calc "sprintf(\"%.2f\", $a / $b)")× |"
    done
    echo
    IF_TOT_SENT=$(sent_so_far ironfence)
    IF_TOT_SENT=$((IF_TOT_SENT + $(sent_so_far ironfence-total)))
    FR_TOT_SENT=$(sent_so_far freeradius)
    FR_TOT_SENT=$((FR_TOT_SENT + $(sent_so_far freeradius-total)))
    IF_RSS=$(get ironfence-total 32 server_rss_mb)
    FR_RSS=$(get freeradius-total 32 server_rss_mb)
    echo "RSS (VmRSS) after the whole sequence: ironfence **$IF_RSS MB** (anonymous $(get ironfence-total 32 server_rss_anon_mb) MB, file-backed $(get ironfence-total 32 server_rss_file_mb) MB; peak $(get ironfence-total 32 server_hwm_mb) MB) after $(fmt_int "$IF_TOT_SENT") requests${IF_METRIC_REQUESTS:+ (server metrics: $(fmt_int "$IF_METRIC_REQUESTS") auth requests)}; FreeRADIUS **$FR_RSS MB** (anonymous $(get freeradius-total 32 server_rss_anon_mb) MB, file-backed $(get freeradius-total 32 server_rss_file_mb) MB; peak $(get freeradius-total 32 server_hwm_mb) MB) after $(fmt_int "$FR_TOT_SENT") requests."
    echo "ironfence's SQLite database (with -wal/-shm) is ${IF_DB_MB:-?} MB at the end."
    echo "Errors in the RSS runs: ironfence $(get ironfence-total 32 errors), FreeRADIUS $(get freeradius-total 32 errors). FreeRADIUS logged $FR_CONFLICTS \"conflicting packet\" messages."
    if [ -n "$IF_METRICS_TEXT" ]; then
        echo
        echo "ironfence counters at the end (/metrics):"
        echo
        echo '```'
        echo "$IF_METRICS_TEXT"
        echo '```'
    fi
    echo
    I32=$(get ironfence 32 req/s)
    F32=$(get freeradius 32 req/s)
    P99=$(get ironfence 32 p99_ms)
    CPU=$(get ironfence 32 server_cpu_us_per_req)
    N32=$(get null 32 req/s)
    echo "| target | measured | verdict |"
    echo "| --- | --- | --- |"
    echo "| c=32: ironfence ≥ 2× FreeRADIUS req/s | $(calc "sprintf(\"%.2f\", $I32 / $F32)")× ($(fmt_int "$I32") vs $(fmt_int "$F32")) | $(verdict "$I32 >= 2 * $F32") |"
    echo "| c=32: ironfence p99 ≤ 0.5 ms | $P99 ms | $(verdict "$P99 <= 0.5") |"
    echo "| c=32: ironfence ≤ 10 µs server CPU per request | $CPU µs | $(verdict "$CPU <= 10") |"
    echo "| ironfence RSS ≤ 100 MB after $(fmt_int "$TOTAL") requests | $IF_RSS MB after $(fmt_int "$IF_TOT_SENT") | $(verdict "$IF_TOT_SENT >= $TOTAL && $IF_RSS <= 100") |"
    echo "| load generator ceiling > 2× FreeRADIUS (c=32) | $(fmt_int "$N32") req/s = $(calc "sprintf(\"%.1f\", $N32 / $F32)")× | $(verdict "$N32 > 2 * $F32") |"
} >"$WORK/report.md"

echo "Result lines:"
cat "$RESULTS"
echo
cat "$WORK/report.md"
if [ -n "$OUT" ]; then
    cp "$WORK/report.md" "$OUT"
    log "report written to $OUT"
fi
