#!/usr/bin/env bash
# MAB benchmark, ironfence vs FreeRADIUS 3.2 (Debian package), side by side, one command.
#
#   bench/mab.sh [--store sqlite|mariadb|galera[,...]] [--growth [--growth-sizes N,N,...]]
#                [--perf] [--quick] [--pin] [--no-audit | --audit MODE] [--devices N] [--out FILE] [--keep]
#
#   --store LIST   which ironfence stores to measure, comma-separated, in this order (default
#                  sqlite; with --growth alone: none):
#                    sqlite   ironfence on SQLite vs FreeRADIUS with a users file (rlm_files)
#                    mariadb  a private mariadbd started here: ironfence on it vs FreeRADIUS
#                             with rlm_sql on the same mariadbd and the same devices; mariadbd
#                             CPU per request for both
#                    galera   3-node MariaDB Galera in network namespaces created here;
#                             ironfence in the first namespace on its local node; CPU per
#                             request of ironfence and of each mariadbd
#                  `--store sqlite,mariadb` also reports MariaDB as a fraction of SQLite.
#   --growth       SQLite at c=32 with 100k, 1M and 10M devices (each as % of the first size),
#                  import time, database size; FreeRADIUS users file at each size up to 1M
#                  (start time, RSS, req/s)
#   --growth-sizes N,N,...  device counts for --growth (default 100000,1000000,10000000)
#   --perf         record ironfence with `perf record -g` during an extra c=32 run per store
#                  (not counted in the figures) and print the top symbols
#   --quick        3 s steps after 1 s warm-up, 200,000 requests for the RSS step (default:
#                  10 s steps after 3 s warm-up, 1,000,000 requests)
#   --pin          server on CPU 0, load generator on CPU 1 (default: nobody pinned)
#   --no-audit     diagnostic: ironfence with audit_log = disabled (default: its production
#                  default, audit_log = file: one record per request in its own files)
#   --audit MODE   audit_log = file | database | disabled; `database` is PacketFence's way
#                  (one radius_audit_log row per request; replicated on Galera), to measure it
#   --devices N    device population of the --store runs (default 100000)
#   --no-build     use the binaries already in target/release (default: cargo build --release)
#   --out FILE     also write the Markdown report to FILE
#   --keep         keep the work directory (configs, logs, databases) for inspection
#
# Everything runs on 127.0.0.1 with free ports, in a temporary work directory, or (galera)
# inside network namespaces created here (10.99.0.0/24 exists only inside them). Every process
# started here is stopped (by its saved PID), the namespaces deleted and the work directory
# removed on exit, also on failure or Ctrl-C. Targets are reported as met / NOT met, never
# asserted: the exit status is 0 whenever the benchmark itself ran. See docs/benchmarks.md.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0
PIN=0
KEEP=0
AUDIT=file
BUILD=1
DEVICES=100000
OUT=""
STORES=""
GROWTH=0
GROWTH_SIZES=100000,1000000,10000000
GROWTH_FR_MAX=1000000 # FreeRADIUS users file measured at growth sizes up to this one
PERF=0
PERF_SECS=5
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --pin) PIN=1 ;;
        --no-audit) AUDIT=disabled ;;
        --audit) AUDIT=$2; shift
            case "$AUDIT" in file | database | disabled) ;; *) echo "--audit file|database|disabled" >&2; exit 2 ;; esac ;;
        --no-build) BUILD=0 ;;
        --keep) KEEP=1 ;;
        --devices) DEVICES=$2; shift ;;
        --out) OUT=$2; shift ;;
        --store | --stores) STORES=$2; shift ;;
        --growth) GROWTH=1 ;;
        --growth-sizes) GROWTH=1; GROWTH_SIZES=$2; shift ;;
        --perf) PERF=1 ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$STORES" ] && [ "$GROWTH" = 0 ]; then
    STORES=sqlite
fi
IFS=, read -r -a STORE_LIST <<<"$STORES"
for s in "${STORE_LIST[@]}"; do
    case "$s" in
        sqlite | mariadb | galera) ;;
        *) echo "--store: unknown store $s (sqlite, mariadb, galera)" >&2; exit 2 ;;
    esac
done
has_store() { [[ ",$STORES," == *",$1,"* ]]; }

if [ "$QUICK" = 1 ]; then
    WARMUP=1s DURATION=3s TOTAL=200000
else
    WARMUP=3s DURATION=10s TOTAL=1000000
fi
CONCURRENCIES=(1 32 256)
# TEST FIXTURE secret, used only between processes of this script on 127.0.0.1 or inside the
# script's own namespaces.
SECRET='bench-test-fixture-secret-NOT-FOR-PRODUCTION'
export LOADGEN_SECRET=$SECRET # the load generator reads it from the environment, not argv
# TEST FIXTURE database passwords (mariadbd started by this script, loopback / own namespaces).
IF_DB_PASS='bench-ironfence-db-fixture-NOT-FOR-PRODUCTION'
FR_DB_PASS='bench-radius-db-fixture-NOT-FOR-PRODUCTION'
FREERADIUS=/usr/sbin/freeradius
FR_QUERIES=/etc/freeradius/3.0/mods-config/sql/main/mysql/queries.conf
FR_SCHEMA=/etc/freeradius/3.0/mods-config/sql/main/mysql/schema.sql
GALERA_PROVIDER=/usr/lib/galera/libgalera_smm.so
GALERA_NET=10.99.0 # /24, exists only inside the namespaces this script creates

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

[ -x "$FREERADIUS" ] || die "$FREERADIUS not found: apt-get install freeradius"
if [ "$PIN" = 1 ]; then
    command -v taskset >/dev/null || die "--pin needs taskset (util-linux)"
    [ "$(nproc)" -ge 2 ] || die "--pin needs 2 CPUs"
fi
if has_store mariadb || has_store galera; then
    for p in mariadbd mariadb-install-db mariadb; do
        command -v "$p" >/dev/null || die "$p not found: apt-get install mariadb-server mariadb-client"
    done
    id mysql >/dev/null 2>&1 || die "no mysql system user (created by mariadb-server)"
fi
if has_store mariadb; then
    [ -e /usr/lib/freeradius/rlm_sql_mysql.so ] && [ -r "$FR_QUERIES" ] ||
        die "FreeRADIUS rlm_sql_mysql not found: apt-get install freeradius-mysql"
fi
if has_store galera; then
    [ -e "$GALERA_PROVIDER" ] || die "$GALERA_PROVIDER not found: apt-get install galera-4"
    command -v rsync >/dev/null || die "rsync (Galera SST) not found: apt-get install rsync"
    command -v ip >/dev/null || die "ip not found: apt-get install iproute2"
    [ "$(id -u)" = 0 ] || die "--store galera needs root (network namespaces)"
fi
if [ "$PERF" = 1 ]; then
    command -v perf >/dev/null || die "--perf needs perf: apt-get install linux-perf"
fi

# ---------------------------------------------------------------------------------------------
# Process bookkeeping and cleanup
PIDS=()
CREATED_NS=()
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ironfence-bench.XXXXXX")
# mariadbd runs as mysql and must traverse to its datadir; everything secret in here is a
# marked test fixture.
chmod 755 "$WORK"

# alive PID: running and not a zombie.
alive() {
    local s
    s=$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) && [ -n "$s" ] && [ "$s" != Z ]
}
# terminate PID [GRACE_S]: SIGTERM, wait up to GRACE_S seconds (default 30), then SIGKILL; reap.
terminate() {
    local pid=$1 grace=${2:-30} i
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        log "PID $pid still running after ${grace}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    local pid ns i
    trap '' INT TERM
    # Newest first: ironfence before the mariadbd it uses, Galera nodes one after the other.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        terminate "${PIDS[$i]}" 30
    done
    for ns in "${CREATED_NS[@]}"; do
        # Anything still inside our namespaces was started by this script (e.g. an SST helper).
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || log "could not delete namespace $ns"
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

# stop_pid PID [GRACE_S]: SIGTERM, wait (default 60 s, then SIGKILL), forget.
stop_pid() {
    local pid=$1 grace=${2:-60} p keep=()
    terminate "$pid" "$grace"
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
"$LG" --help | grep -q -- --also-pid || die "$LG is too old (no --also-pid): rebuild it"

SERVER_PREFIX=()
LG_PIN=()
if [ "$PIN" = 1 ]; then
    SERVER_PREFIX=(taskset -c 0)
    LG_PIN=(--cpu 1)
fi
# Set per run: NSX = command prefix that enters a namespace (galera), ALSO = --also-pid args.
NSX=()
ALSO=()

RESULTS=$WORK/results.txt
: >"$RESULTS"
FACTS=$WORK/facts.txt # key=value lines for the report (import times, sizes, counters)
: >"$FACTS"
fact() { echo "$1=$2" >>"$FACTS"; }
getfact() { awk -v k="$1" 'index($0, k "=") == 1 { v = substr($0, length(k) + 2) } END { print v }' "$FACTS"; }

# wait_ready PORT PID NAME LOGFILE: until one verified Access-Accept comes back.
wait_ready() {
    local port=$1 pid=$2 name=$3 logfile=$4 i
    for i in $(seq 1 600); do
        if ! alive "$pid"; then
            tail -n 30 "$logfile" >&2 || true
            die "$name exited during startup (log above)"
        fi
        if "${NSX[@]}" "$LG" --server "127.0.0.1:$port" --label probe -c 1 --devices "$DEVICES" \
            --warmup 0 --requests 1 --timeout 200ms --retries 0 --fail-on-error >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    tail -n 30 "$logfile" >&2 || true
    die "$name did not answer on 127.0.0.1:$port within 2 min"
}

# loadgen LABEL PORT PID ARGS...: one run; its result line goes to stdout and $RESULTS.
loadgen() {
    local label=$1 port=$2 pid=$3 line
    shift 3
    line=$("${NSX[@]}" "$LG" --server "127.0.0.1:$port" --label "$label" \
        --devices "$DEVICES" --server-pid "$pid" "${ALSO[@]}" "${LG_PIN[@]}" "$@")
    echo "$line" >>"$RESULTS"
    echo "$line" >&2
}

# sent_so_far LABEL: requests sent to LABEL by the runs so far (warm-ups included).
sent_so_far() {
    awk -v t="target=$1" '$1 == t { for (i = 2; i <= NF; i++) if ($i ~ /^sent_total=/) { split($i, a, "="); s += a[2] } } END { print s + 0 }' "$RESULTS"
}

# steps LABEL PORT PID FILL: the concurrency steps; FILL=1: then enough requests at c=32 to
# reach $TOTAL, for the RSS reading.
steps() {
    local label=$1 port=$2 pid=$3 fill=$4 c sent rest
    for c in "${CONCURRENCIES[@]}"; do
        log "$label: c=$c, ${WARMUP} warm-up + ${DURATION}"
        loadgen "$label" "$port" "$pid" -c "$c" --warmup "$WARMUP" --duration "$DURATION"
    done
    [ "$fill" = 1 ] || return 0
    sent=$(sent_so_far "$label")
    rest=$((TOTAL - sent))
    [ "$rest" -ge 10000 ] || rest=10000 # the RSS reading comes with this run
    log "$label: $sent requests so far, $rest more at c=32 to reach $TOTAL, then RSS"
    loadgen "$label-total" "$port" "$pid" -c 32 --warmup 0 --requests "$rest"
}

# prime LABEL PORT PID: requests for 3× the device population at c=64 before the measured
# steps (not part of the figures), so that ironfence's node cache holds ~95 % of the devices:
# the steady state of a network whose devices re-authenticate. Only for the database stores,
# where the cache decides the cost; FreeRADIUS has no cache (its mariadbd's buffer pool is warm
# from the load) and is not primed.
prime() {
    local label=$1 port=$2 pid=$3
    log "$label: priming the node cache with $((DEVICES * 3)) requests at c=64 (not measured)"
    loadgen "$label-prime" "$port" "$pid" -c 64 --warmup 0 --requests "$((DEVICES * 3))" >/dev/null
}

# profile LABEL PORT PID: an extra c=32 run with `perf record -g` attached to PID for
# $PERF_SECS s (not part of the figures); the summary goes to $WORK/perf-LABEL.txt.
profile() {
    local label=$1 port=$2 pid=$3 lgpid data=$WORK/perf-$1.data
    [ "$PERF" = 1 ] || return 0
    log "$label: perf record -g for ${PERF_SECS}s during an extra c=32 run"
    loadgen "$label-perf" "$port" "$pid" -c 32 --warmup 1s --duration "$((PERF_SECS + 2))s" >/dev/null &
    lgpid=$!
    PIDS+=("$lgpid")
    sleep 1.5
    perf record -g -q -p "$pid" -o "$data" -- sleep "$PERF_SECS" >"$WORK/perf-$label.log" 2>&1 ||
        log "perf record failed: $(tail -n 3 "$WORK/perf-$label.log")"
    wait "$lgpid" || true
    local p keep=()
    for p in "${PIDS[@]}"; do [ "$p" = "$lgpid" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
    [ -s "$data" ] || return 0
    {
        echo "perf record -g, ${PERF_SECS} s of $label at c=32; perf report --no-children --percent-limit 2 --stdio (self time, flat):"
        perf report -i "$data" --no-children --percent-limit 2 --stdio -g none --sort dso,symbol 2>/dev/null |
            grep -E '^ +[0-9.]+%' | sed -E 's/[[:space:]]+(-[[:space:]]+-)?[[:space:]]*$//' | head -n 30 || true
        echo
        echo "by shared object (self time):"
        perf report -i "$data" --no-children --percent-limit 1 --stdio -g none --sort dso 2>/dev/null |
            grep -E '^ +[0-9.]+%' | sed -E 's/[[:space:]]+(-[[:space:]]+-)?[[:space:]]*$//' | head -n 12 || true
    } >"$WORK/perf-$label.txt"
    [ "$KEEP" = 1 ] || rm -f "$data" # with --keep: perf report -i perf-LABEL.data (call graphs)
}

# metrics PORT: the ironfence counters the report shows.
metrics() {
    command -v curl >/dev/null || return 0
    "${NSX[@]}" curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null |
        grep -E '^ironfence_(radius_requests|radius_replies|radius_dropped|audit_records|store_errors|node_cache_hits|node_cache_misses|node_cache_untrusted)_total' || true
}

mapfile -t PORTS < <("$LG" free-ports 12)
[ "${#PORTS[@]}" = 12 ] || die "could not find free ports"
NULL_PORT=${PORTS[11]}

# ---------------------------------------------------------------------------------------------
# ironfence configuration: write_ironfence DIR AUTH ACCT METRICS DATABASE_SECTION_BODY
write_ironfence() {
    local dir=$1 auth=$2 acct=$3 metrics=$4 db=$5
    mkdir -p "$dir/conf" "$dir/state"
    cat >"$dir/conf/pf.conf" <<EOF
[general]
state_dir = $dir/state

[database]
$db

[radius]
listen = 127.0.0.1
auth_port = $auth
acct_port = $acct
audit_log = $AUDIT

[metrics]
listen = 127.0.0.1:$metrics
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
# TEST FIXTURE secret (bench/mab.sh only, loopback only). Never use it for a real switch.
radiusSecret = $SECRET
require_message_authenticator = yes
EOF
    cp "$ROOT/conf/roles.conf" "$dir/conf/roles.conf"
}

# start_ironfence LABEL DIR AUTH -> IF_PID (and in PIDS); waits until it answers.
start_ironfence() {
    local label=$1 dir=$2 auth=$3 t0
    log "$label: starting on 127.0.0.1:$auth"
    t0=$(now)
    "${NSX[@]}" "${SERVER_PREFIX[@]}" "$IRONFENCE" --conf-dir "$dir/conf" serve >"$dir/serve.log" 2>&1 &
    IF_PID=$!
    PIDS+=("$IF_PID")
    wait_ready "$auth" "$IF_PID" "$label" "$dir/serve.log"
    fact "$label.start_s" "$(elapsed "$t0")"
}

# import_nodes LABEL DIR CSV: checkup, then `node import`, timed.
import_nodes() {
    local label=$1 dir=$2 csv=$3 t0
    log "$label: checkup and import of $(($(wc -l <"$csv") - 1)) devices"
    "${NSX[@]}" "$IRONFENCE" --conf-dir "$dir/conf" checkup >"$dir/checkup.log" 2>&1 ||
        { cat "$dir/checkup.log" >&2; die "ironfence checkup failed"; }
    t0=$(now)
    "${NSX[@]}" "$IRONFENCE" --conf-dir "$dir/conf" node import "$csv" >"$dir/import.log" 2>&1 ||
        { tail -n 20 "$dir/import.log" >&2; die "ironfence node import failed"; }
    fact "$label.import_s" "$(elapsed "$t0")"
}

# ---------------------------------------------------------------------------------------------
# FreeRADIUS 3.2 (Debian package), lean configuration written from scratch.
# write_freeradius DIR PORT MODULES AUTHORIZE [THREADS]: MODULES is the text of extra module
# instances, AUTHORIZE the module that finds the device (mab_users or sql), THREADS the threads
# started at once (default 5).
write_freeradius() {
    local dir=$1 port=$2 modules=$3 authz=$4 threads=${5:-5}
    mkdir -p "$dir/raddb" "$dir/run" "$dir/log"
    : >"$dir/raddb/dictionary" # the package's dictionaries in /usr/share/freeradius are loaded anyway
    cat >"$dir/raddb/radiusd.conf" <<EOF
# Lean FreeRADIUS 3.2 MAB server for bench/mab.sh (see docs/benchmarks.md).
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = $dir/log
raddbdir = $dir/raddb
radacctdir = \${logdir}/radacct
name = freeradius
confdir = \${raddbdir}
modconfdir = \${confdir}/mods-config
certdir = \${confdir}/certs
cadir = \${confdir}/certs
run_dir = $dir/run
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
	start_servers = $threads
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
$modules
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
		port = $port
		recv_buff = 4194304
	}
	authorize {
		$authz
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
    chmod -R go-w "$dir"
    chmod 700 "$dir/raddb" # it holds the (fixture) database password
}

# start_freeradius LABEL DIR PORT -> FR_PID (and in PIDS); waits until it answers.
start_freeradius() {
    local label=$1 dir=$2 port=$3 t0
    log "$label: starting FreeRADIUS on 127.0.0.1:$port"
    t0=$(now)
    "${SERVER_PREFIX[@]}" "$FREERADIUS" -f -d "$dir/raddb" -l "$dir/log/freeradius.log" >"$dir/log/stdout.log" 2>&1 &
    FR_PID=$!
    PIDS+=("$FR_PID")
    wait_ready "$port" "$FR_PID" "$label" "$dir/log/freeradius.log"
    fact "$label.start_s" "$(elapsed "$t0")"
    fact "$label.start_rss_mb" "$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$FR_PID/status")"
}

FILES_MODULE='	files mab_users {
		filename = ${raddbdir}/mab_users
		key = "%{User-Name}"
	}'

# ---------------------------------------------------------------------------------------------
# MariaDB helpers
# sql SOCKET SQL...: as root over the unix socket, tab-separated, no column names.
sql() {
    local sock=$1
    shift
    mariadb --no-defaults --socket="$sock" -uroot --batch --skip-column-names --connect-timeout=2 -e "$*"
}
# install_datadir DIR: a fresh datadir (root authenticates by unix socket).
install_datadir() {
    local d=$1
    mkdir -p "$d/data" "$d/tmp"
    chown -R mysql:mysql "$d"
    mariadb-install-db --no-defaults --datadir="$d/data" --user=mysql \
        --auth-root-authentication-method=socket --auth-root-socket-user=root \
        --skip-test-db --skip-name-resolve --tmpdir="$d/tmp" >"$d/install.log" 2>&1 ||
        { tail -n 20 "$d/install.log" >&2; die "mariadb-install-db failed"; }
}
# wait_sql SOCKET PID LOG: until mariadbd answers on its socket.
wait_sql() {
    local sock=$1 pid=$2 errlog=$3 i
    for i in $(seq 1 1200); do
        alive "$pid" || { tail -n 30 "$errlog" >&2; die "mariadbd (PID $pid) exited during startup"; }
        sql "$sock" "SELECT 1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    tail -n 30 "$errlog" >&2
    die "mariadbd (PID $pid) not ready after 2 min"
}
# create_accounts SOCKET HOSTS: databases ironfence and radius, their (fixture) accounts for
# each host in HOSTS (space-separated), FreeRADIUS's stock schema.
create_accounts() {
    local sock=$1 hosts=$2 h s=""
    for h in $hosts; do
        s+="CREATE USER IF NOT EXISTS 'ironfence'@'$h' IDENTIFIED BY '$IF_DB_PASS';
            GRANT ALL PRIVILEGES ON ironfence.* TO 'ironfence'@'$h';
            CREATE USER IF NOT EXISTS 'radius'@'$h' IDENTIFIED BY '$FR_DB_PASS';
            GRANT SELECT, INSERT, UPDATE, DELETE ON radius.* TO 'radius'@'$h';"
    done
    sql "$sock" "CREATE DATABASE IF NOT EXISTS ironfence CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
        CREATE DATABASE IF NOT EXISTS radius; $s"
}
# db_size_mb SOCKET DB: data + index size as InnoDB reports it.
db_size_mb() {
    sql "$1" "SELECT ROUND(SUM(data_length + index_length) / 1048576, 1) FROM information_schema.tables WHERE table_schema = '$2'"
}

# radius_rows USERS_FILE OUTDIR: radcheck.tsv and radreply.tsv from the users file that
# `ironfence-loadgen seed` wrote (so FreeRADIUS's SQL rows and the expected VLANs come from
# the same formula as everything else).
radius_rows() {
    awk -v chk="$2/radcheck.tsv" -v rep="$2/radreply.tsv" '
        /^[0-9a-f]+ Cleartext-Password := / { mac = $1; print mac "\tCleartext-Password\t:=\t" mac > chk; next }
        mac != "" && /Tunnel-Private-Group-Id/ {
            v = $0; sub(/.*= *"/, "", v); sub(/".*/, "", v)
            print mac "\tTunnel-Type\t=\tVLAN" > rep
            print mac "\tTunnel-Medium-Type\t=\tIEEE-802" > rep
            print mac "\tTunnel-Private-Group-Id\t=\t" v > rep
            mac = "" }' "$1"
}
# load_radius SOCKET DIR: the stock schema, then the rows by LOAD DATA, timed.
load_radius() {
    local sock=$1 dir=$2 t0
    sql "$sock" "USE radius; SOURCE $FR_SCHEMA;" >/dev/null
    t0=$(now)
    mariadb --no-defaults --socket="$sock" -uroot --local-infile=1 radius -e "
        LOAD DATA LOCAL INFILE '$dir/radcheck.tsv' INTO TABLE radcheck (username, attribute, op, value);
        LOAD DATA LOCAL INFILE '$dir/radreply.tsv' INTO TABLE radreply (username, attribute, op, value);
        ANALYZE TABLE radcheck, radreply;" >/dev/null
    # Without the ANALYZE the optimizer may still see the tables as empty (statistics from
    # CREATE TABLE) and scan them by PRIMARY for ORDER BY id: 44 ms of mariadbd per request.
    fact "freeradius-sql.import_s" "$(elapsed "$t0")"
}

sql_module() { # sql_module HOST PORT
    cat <<EOF
	# The stock queries.conf uses %{integer:...}, which the expr module provides.
	expr {
	}
	sql {
		dialect = "mysql"
		driver = "rlm_sql_mysql"
		server = "$1"
		port = $2
		login = "radius"
		# TEST FIXTURE password (bench/mab.sh's own mariadbd only).
		password = "$FR_DB_PASS"
		radius_db = "radius"
		acct_table1 = "radacct"
		acct_table2 = "radacct"
		postauth_table = "radpostauth"
		authcheck_table = "radcheck"
		groupcheck_table = "radgroupcheck"
		authreply_table = "radreply"
		groupreply_table = "radgroupreply"
		usergroup_table = "radusergroup"
		delete_stale_sessions = yes
		read_clients = no
		client_table = "nas"
		group_attribute = "SQL-Group"
		# Opened at start: FreeRADIUS opens at most one more connection per second, so a pool
		# that starts at 5 stalls the first seconds of the c = 32 step (timeouts).
		pool {
			start = 32
			min = 32
			max = 32
			spare = 10
			uses = 0
			retry_delay = 30
			lifetime = 0
			idle_timeout = 60
		}
		\$INCLUDE $FR_QUERIES
	}
EOF
}

# ---------------------------------------------------------------------------------------------
# Devices
if [ ${#STORE_LIST[@]} -gt 0 ]; then
    log "generating $DEVICES devices"
    "$LG" seed --devices "$DEVICES" --csv "$WORK/nodes.csv" --freeradius-users "$WORK/mab_users"
fi

# ---------------------------------------------------------------------------------------------
# Store runs
run_sqlite() {
    local d=$WORK/sqlite
    write_ironfence "$d" "${PORTS[0]}" "${PORTS[1]}" "${PORTS[2]}" "type = sqlite"
    import_nodes ironfence "$d" "$WORK/nodes.csv"
    start_ironfence ironfence "$d" "${PORTS[0]}"
    steps ironfence "${PORTS[0]}" "$IF_PID" 1
    metrics "${PORTS[2]}" >"$WORK/metrics-ironfence.txt"
    profile ironfence "${PORTS[0]}" "$IF_PID"
    stop_pid "$IF_PID"
    fact ironfence.db_mb "$(du -cm "$d/state"/ironfence*.db* 2>/dev/null | awk 'END { print $1 }')"

    local f=$WORK/freeradius
    write_freeradius "$f" "${PORTS[3]}" "$FILES_MODULE" mab_users
    cp "$WORK/mab_users" "$f/raddb/mab_users"
    start_freeradius freeradius "$f" "${PORTS[3]}"
    steps freeradius "${PORTS[3]}" "$FR_PID" 1
    fact freeradius.conflicts "$(grep -c 'conflicting packet' "$f/log/freeradius.log" || true)"
    stop_pid "$FR_PID"
}

run_mariadb() {
    local m=$WORK/mariadb port=${PORTS[4]} t0
    install_datadir "$m"
    log "mariadb: starting a private mariadbd on 127.0.0.1:$port"
    mariadbd --no-defaults --user=mysql --datadir="$m/data" --socket="$m/mysqld.sock" \
        --port="$port" --bind-address=127.0.0.1 --log-error="$m/error.log" \
        --pid-file="$m/mysqld.pid" --tmpdir="$m/tmp" --skip-name-resolve --skip-log-bin \
        --innodb-flush-log-at-trx-commit=2 --performance-schema=OFF --max-connections=200 \
        --local-infile=1 >/dev/null 2>&1 &
    DB_PID=$!
    PIDS+=("$DB_PID")
    wait_sql "$m/mysqld.sock" "$DB_PID" "$m/error.log"
    create_accounts "$m/mysqld.sock" 127.0.0.1
    fact mariadb.version "$(sql "$m/mysqld.sock" 'SELECT VERSION()')"

    local d=$WORK/ironfence-mariadb
    write_ironfence "$d" "${PORTS[5]}" "${PORTS[6]}" "${PORTS[7]}" "type = mysql
host = 127.0.0.1
port = $port
user = ironfence
# TEST FIXTURE password (bench/mab.sh's own mariadbd only).
pass = $IF_DB_PASS
db = ironfence"
    import_nodes ironfence-mariadb "$d" "$WORK/nodes.csv"
    ALSO=(--also-pid "mariadbd=$DB_PID")
    start_ironfence ironfence-mariadb "$d" "${PORTS[5]}"
    prime ironfence-mariadb "${PORTS[5]}" "$IF_PID"
    steps ironfence-mariadb "${PORTS[5]}" "$IF_PID" 0
    metrics "${PORTS[7]}" >"$WORK/metrics-ironfence-mariadb.txt"
    profile ironfence-mariadb "${PORTS[5]}" "$IF_PID"
    stop_pid "$IF_PID"
    fact ironfence-mariadb.db_mb "$(db_size_mb "$m/mysqld.sock" ironfence)"

    local f=$WORK/freeradius-sql
    radius_rows "$WORK/mab_users" "$m"
    load_radius "$m/mysqld.sock" "$m"
    fact freeradius-sql.rows "$(sql "$m/mysqld.sock" 'SELECT (SELECT COUNT(*) FROM radius.radcheck), (SELECT COUNT(*) FROM radius.radreply)' | tr '\t' /)"
    write_freeradius "$f" "${PORTS[8]}" "$(sql_module 127.0.0.1 "$port")" sql 32
    start_freeradius freeradius-sql "$f" "${PORTS[8]}"
    steps freeradius-sql "${PORTS[8]}" "$FR_PID" 0
    stop_pid "$FR_PID" 5
    fact freeradius-sql.db_mb "$(db_size_mb "$m/mysqld.sock" radius)"
    ALSO=()
    stop_pid "$DB_PID"
}

# Galera: switch namespace with a bridge, three host namespaces on it (10.99.0.11-13).
G_NS_SW=ifb$$s
G_NS=(ifb$$h1 ifb$$h2 ifb$$h3)
galera_net_up() {
    local i ns
    for ns in "$G_NS_SW" "${G_NS[@]}"; do
        ! ip netns list | awk '{ print $1 }' | grep -qx "$ns" || die "namespace $ns already exists"
    done
    ip netns add "$G_NS_SW"
    CREATED_NS+=("$G_NS_SW")
    ip -n "$G_NS_SW" link set lo up
    ip -n "$G_NS_SW" link add br0 type bridge
    ip -n "$G_NS_SW" link set br0 up
    for i in 0 1 2; do
        ns=${G_NS[$i]}
        ip netns add "$ns"
        CREATED_NS+=("$ns")
        # Both ends created inside the lab's namespaces: nothing appears in the root namespace.
        ip link add "p$i" netns "$G_NS_SW" type veth peer name eth0 netns "$ns"
        ip -n "$G_NS_SW" link set "p$i" master br0 up
        ip -n "$ns" link set lo up
        ip -n "$ns" link set eth0 up
        ip -n "$ns" addr add "$GALERA_NET.$((11 + i))/24" dev eth0
    done
    for i in 1 2; do
        for _ in $(seq 1 50); do
            ip netns exec "${G_NS[0]}" ping -c1 -W1 "$GALERA_NET.$((11 + i))" >/dev/null 2>&1 && break
            sleep 0.1
        done
    done
}
# galera_cnf I: my.cnf of node I (0-based), as `ironfence db generate-config` writes it except
# for the SST method (rsync: the fastest join of an empty node; SST is not measured here).
galera_cnf() {
    local i=$1 d=$WORK/galera/n$1
    mkdir -p "$d/data" "$d/tmp"
    cat >"$d/my.cnf" <<EOF
[mariadbd]
user=mysql
datadir=$d/data
tmpdir=$d/tmp
socket=$d/mysqld.sock
pid-file=$d/mysqld.pid
log-error=$d/error.log
bind-address=127.0.0.1,$GALERA_NET.$((11 + i))
port=3306
skip-name-resolve
server-id=$((i + 1))
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
innodb_flush_log_at_trx_commit=2
performance_schema=OFF
local_infile=1
wsrep_on=ON
wsrep_provider=$GALERA_PROVIDER
wsrep_cluster_name=ironfence-bench
wsrep_cluster_address=gcomm://$GALERA_NET.11,$GALERA_NET.12,$GALERA_NET.13
wsrep_node_name=n$((i + 1))
wsrep_node_address=$GALERA_NET.$((11 + i))
wsrep_sst_method=rsync
wsrep_slave_threads=1
wsrep_dirty_reads=ON
wsrep_provider_options="gcache.size=128M; pc.recovery=TRUE; gmcast.peer_timeout=PT1S; evs.keepalive_period=PT0.2S; evs.inactive_check_period=PT0.2S; evs.suspect_timeout=PT1S; evs.inactive_timeout=PT2S; evs.install_timeout=PT2S; evs.join_retrans_period=PT0.2S"

[client]
socket=$d/mysqld.sock
EOF
    chown -R mysql:mysql "$d"
}
wsrep() { sql "$1" "SHOW GLOBAL STATUS LIKE '$2'" 2>/dev/null | awk '{ print $2 }'; }
wait_synced() {
    local sock=$1 pid=$2 errlog=$3 i
    for i in $(seq 1 1800); do
        alive "$pid" || { tail -n 30 "$errlog" >&2; die "mariadbd (PID $pid) exited while joining"; }
        if [ "$(wsrep "$sock" wsrep_local_state_comment)" = Synced ] &&
            [ "$(wsrep "$sock" wsrep_ready)" = ON ]; then
            return 0
        fi
        sleep 0.1
    done
    tail -n 30 "$errlog" >&2
    die "Galera node (PID $pid) not Synced after 3 min"
}

run_galera() {
    local i d t0 G_PIDS=()
    t0=$(now)
    log "galera: 3 namespaces on a bridge ($GALERA_NET.11-13, inside the namespaces only)"
    galera_net_up
    install_datadir "$WORK/galera/n0"
    for i in 0 1 2; do
        galera_cnf "$i"
        d=$WORK/galera/n$i
        log "galera: starting node $((i + 1)) in ${G_NS[$i]}"
        if [ "$i" = 0 ]; then
            ip netns exec "${G_NS[$i]}" mariadbd --defaults-file="$d/my.cnf" --wsrep-new-cluster >/dev/null 2>&1 &
        else
            ip netns exec "${G_NS[$i]}" mariadbd --defaults-file="$d/my.cnf" >/dev/null 2>&1 &
        fi
        G_PIDS+=($!)
        PIDS+=($!)
        wait_sql "$d/mysqld.sock" "${G_PIDS[$i]}" "$d/error.log"
        wait_synced "$d/mysqld.sock" "${G_PIDS[$i]}" "$d/error.log"
        if [ "$i" = 0 ]; then create_accounts "$d/mysqld.sock" 127.0.0.1; fi
    done
    fact galera.up_s "$(elapsed "$t0")"
    fact galera.size "$(wsrep "$WORK/galera/n0/mysqld.sock" wsrep_cluster_size)"

    NSX=(ip netns exec "${G_NS[0]}")
    d=$WORK/ironfence-galera
    write_ironfence "$d" 1812 1813 9101 "type = mysql
host = 127.0.0.1
port = 3306
user = ironfence
# TEST FIXTURE password (bench/mab.sh's own Galera cluster only).
pass = $IF_DB_PASS
db = ironfence"
    import_nodes ironfence-galera "$d" "$WORK/nodes.csv"
    ALSO=(--also-pid "db1=${G_PIDS[0]}" --also-pid "db2=${G_PIDS[1]}" --also-pid "db3=${G_PIDS[2]}")
    start_ironfence ironfence-galera "$d" 1812
    prime ironfence-galera 1812 "$IF_PID"
    steps ironfence-galera 1812 "$IF_PID" 0
    metrics 9101 >"$WORK/metrics-ironfence-galera.txt"
    profile ironfence-galera 1812 "$IF_PID"
    stop_pid "$IF_PID"
    fact ironfence-galera.db_mb "$(db_size_mb "$WORK/galera/n0/mysqld.sock" ironfence)"
    fact galera.nodes_rows "$(for i in 0 1 2; do sql "$WORK/galera/n$i/mysqld.sock" 'SELECT COUNT(*) FROM ironfence.node'; done | paste -sd /)"
    NSX=()
    ALSO=()
    # Stop the nodes one after the other (the last one may bootstrap); cleanup removes the
    # namespaces.
    for ((i = 2; i >= 0; i--)); do stop_pid "${G_PIDS[$i]}"; done
}

run_growth() {
    local n sizes d f saved=$DEVICES
    IFS=, read -r -a sizes <<<"$GROWTH_SIZES"
    for n in "${sizes[@]}"; do
        DEVICES=$n
        d=$WORK/growth-$n
        mkdir -p "$d"
        log "growth: $n devices"
        local t0
        t0=$(now)
        "$LG" seed --devices "$n" --csv "$d/nodes.csv"
        fact "growth-$n.seed_s" "$(elapsed "$t0")"
        write_ironfence "$d" "${PORTS[9]}" "${PORTS[10]}" "${PORTS[2]}" "type = sqlite"
        import_nodes "growth-$n" "$d" "$d/nodes.csv"
        rm -f "$d/nodes.csv"
        fact "growth-$n.db_mb" "$(du -cm "$d/state"/ironfence.db* 2>/dev/null | awk 'END { print $1 }')"
        start_ironfence "growth-$n" "$d" "${PORTS[9]}"
        log "growth-$n: c=32, ${WARMUP} warm-up + ${DURATION}"
        loadgen "growth-$n" "${PORTS[9]}" "$IF_PID" -c 32 --warmup "$WARMUP" --duration "$DURATION"
        stop_pid "$IF_PID"
        [ "$KEEP" = 1 ] || rm -rf "$d/state"
        if [ "$n" -le "$GROWTH_FR_MAX" ]; then
            f=$WORK/growth-fr-$n
            write_freeradius "$f" "${PORTS[3]}" "$FILES_MODULE" mab_users
            "$LG" seed --devices "$n" --freeradius-users "$f/raddb/mab_users"
            fact "growth-fr-$n.users_mb" "$(du -m "$f/raddb/mab_users" | awk '{ print $1 }')"
            start_freeradius "growth-fr-$n" "$f" "${PORTS[3]}"
            log "growth-fr-$n: c=32, ${WARMUP} warm-up + ${DURATION}"
            loadgen "growth-fr-$n" "${PORTS[3]}" "$FR_PID" -c 32 --warmup "$WARMUP" --duration "$DURATION"
            # With 1M entries FreeRADIUS took over 60 s to exit on SIGTERM (then SIGKILL).
            stop_pid "$FR_PID" 10
            [ "$KEEP" = 1 ] || rm -f "$f/raddb/mab_users"
        fi
    done
    DEVICES=$saved
}

T_ALL=$(now)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for s in "${STORE_LIST[@]}"; do
    t=$(now)
    "run_$s"
    fact "time.$s" "$(elapsed "$t")"
done
if [ "$GROWTH" = 1 ]; then
    t=$(now)
    run_growth
    fact time.growth "$(elapsed "$t")"
fi

# ---------------------------------------------------------------------------------------------
# Null responder: the load generator's ceiling
log "null responder: c=32"
"${SERVER_PREFIX[@]}" "$LG" null-responder --port "$NULL_PORT" --vlan 100 >"$WORK/null.log" 2>&1 &
NULL_PID=$!
PIDS+=("$NULL_PID")
wait_ready "$NULL_PORT" "$NULL_PID" null-responder "$WORK/null.log"
loadgen null "$NULL_PORT" "$NULL_PID" -c 32 --warmup "$WARMUP" --duration "$DURATION" --expect-vlan 100
stop_pid "$NULL_PID"
fact time.total "$(elapsed "$T_ALL")"

# ---------------------------------------------------------------------------------------------
# Report
# get LABEL C FIELD: a field of the result line of LABEL at concurrency C ("" if none).
get() {
    awk -v t="target=$1" -v c="c=$2" -v f="$3" '$1 == t && $2 == c {
        for (i = 3; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == f) print substr($i, n + 1) } }' "$RESULTS" | tail -n 1
}
measured() { [ -n "$(get "$1" "$2" req/s)" ]; }
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
ratio() { calc "sprintf(\"%.2f\", $1 / $2)"; }
metric() { awk -v k="$2" 'index($0, k) == 1 { print $NF; exit }' "$WORK/metrics-$1.txt" 2>/dev/null || true; }
NOTRUN="not measured in this run"

COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
BRANCH=$(git -C "$ROOT" rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$ROOT" status --porcelain 2>/dev/null | head -c1 || true)
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
PLACEMENT="server and load generator unpinned (both share all CPUs)"
[ "$PIN" = 1 ] && PLACEMENT="server pinned to CPU 0, load generator to CPU 1"

# system_row LABEL C NAME [DBFIELD...]: one row of the per-system table.
system_row() {
    local l=$1 c=$2 name=$3 dbs="" f
    shift 3
    measured "$l" "$c" || return 0
    for f in "$@"; do dbs+="${dbs:+ + }$(get "$l" "$c" "${f}_cpu_us_per_req")"; done
    echo "| $name | $c | $(fmt_int "$(get "$l" "$c" req/s)") | $(get "$l" "$c" p50_ms) | $(get "$l" "$c" p99_ms) | $(get "$l" "$c" p999_ms) | $(get "$l" "$c" server_cpu_us_per_req) ($(get "$l" "$c" server_user_us_per_req)+$(get "$l" "$c" server_sys_us_per_req)) | ${dbs:-–} | $(get "$l" "$c" server_cpu_cores) | $(get "$l" "$c" server_rss_mb) ($(get "$l" "$c" server_rss_anon_mb) / $(get "$l" "$c" server_rss_file_mb)) | $(get "$l" "$c" errors) |"
}
table_head() {
    echo "| system | concurrency | req/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/req (user+sys) | $1 | server cores | RSS MB (anon / file) | errors |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
}
counters() { # counters LABEL
    [ -s "$WORK/metrics-$1.txt" ] || return 0
    echo
    echo "$1 counters at the end (/metrics):"
    echo
    echo '```'
    cat "$WORK/metrics-$1.txt"
    echo '```'
}
perf_summary() { # perf_summary LABEL
    [ -s "$WORK/perf-$1.txt" ] || return 0
    echo
    echo '```'
    cat "$WORK/perf-$1.txt"
    echo '```'
}
ver_fr=$("$FREERADIUS" -v 2>/dev/null | awk '/^radiusd: FreeRADIUS Version/ { sub(",", "", $4); print $4; exit }' || true)

{
    echo "## MAB benchmark: ironfence vs FreeRADIUS $ver_fr"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ), commit $COMMIT on $BRANCH${DIRTY:+ (with uncommitted changes)}"
    echo "- machine: $(nproc) CPUs, $CPU_MODEL, kernel $(uname -r), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "- stores: ${STORES:-none}${GROWTH:+$([ "$GROWTH" = 1 ] && echo ", growth $GROWTH_SIZES")}; $DEVICES devices, ${WARMUP} warm-up + ${DURATION} per step, $PLACEMENT, ironfence audit log $AUDIT"
    echo "- load average (1/5/15 min) at the start $LOAD_START, at the end $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shows here, and in the null responder's ceiling)"
    echo "- wall time: total $(getfact time.total) s$(for s in "${STORE_LIST[@]}"; do printf ', %s %s s' "$s" "$(getfact "time.$s")"; done)$([ "$GROWTH" = 1 ] && printf ', growth %s s' "$(getfact time.growth)")"

    if has_store sqlite; then
        echo
        echo "### SQLite (ironfence) vs FreeRADIUS users file (rlm_files)"
        echo
        table_head "DB CPU µs/req"
        for c in "${CONCURRENCIES[@]}"; do system_row ironfence "$c" "ironfence (SQLite)"; done
        for c in "${CONCURRENCIES[@]}"; do system_row freeradius "$c" "FreeRADIUS (users file)"; done
        echo
        echo "| concurrency | ironfence req/s | FreeRADIUS req/s | ironfence / FreeRADIUS |"
        echo "| ---: | ---: | ---: | ---: |"
        for c in "${CONCURRENCIES[@]}"; do
            a=$(get ironfence "$c" req/s) b=$(get freeradius "$c" req/s)
            echo "| $c | $(fmt_int "$a") | $(fmt_int "$b") | $(ratio "$a" "$b")× |"
        done
        echo
        IF_TOT_SENT=$(($(sent_so_far ironfence) + $(sent_so_far ironfence-total)))
        FR_TOT_SENT=$(($(sent_so_far freeradius) + $(sent_so_far freeradius-total)))
        IF_RSS=$(get ironfence-total 32 server_rss_mb)
        FR_RSS=$(get freeradius-total 32 server_rss_mb)
        echo "RSS (VmRSS) after the whole sequence: ironfence **$IF_RSS MB** (anonymous $(get ironfence-total 32 server_rss_anon_mb) MB, file-backed $(get ironfence-total 32 server_rss_file_mb) MB; peak $(get ironfence-total 32 server_hwm_mb) MB) after $(fmt_int "$IF_TOT_SENT") requests; FreeRADIUS **$FR_RSS MB** (anonymous $(get freeradius-total 32 server_rss_anon_mb) MB, file-backed $(get freeradius-total 32 server_rss_file_mb) MB; peak $(get freeradius-total 32 server_hwm_mb) MB) after $(fmt_int "$FR_TOT_SENT") requests."
        echo "ironfence's SQLite files (database and audit log, with -wal/-shm) are $(getfact ironfence.db_mb) MB at the end; import of $DEVICES devices $(getfact ironfence.import_s) s."
        echo "Errors in the RSS runs: ironfence $(get ironfence-total 32 errors), FreeRADIUS $(get freeradius-total 32 errors). FreeRADIUS logged $(getfact freeradius.conflicts) \"conflicting packet\" messages."
        counters ironfence
        perf_summary ironfence
    fi

    if has_store mariadb; then
        echo
        echo "### MariaDB $(getfact mariadb.version) (own mariadbd): ironfence vs FreeRADIUS rlm_sql"
        echo
        echo "One mariadbd, started by the script; ironfence's database \`ironfence\` and FreeRADIUS's stock schema in \`radius\` ($(getfact freeradius-sql.rows) radcheck/radreply rows, loaded in $(getfact freeradius-sql.import_s) s) hold the same $DEVICES devices. DB CPU = mariadbd's utime+stime over the measured window / replies."
        echo
        table_head "mariadbd CPU µs/req"
        for c in "${CONCURRENCIES[@]}"; do system_row ironfence-mariadb "$c" "ironfence (MariaDB)" mariadbd; done
        for c in "${CONCURRENCIES[@]}"; do system_row freeradius-sql "$c" "FreeRADIUS (rlm_sql)" mariadbd; done
        echo
        echo "| concurrency | ironfence req/s | FreeRADIUS rlm_sql req/s | ironfence / FreeRADIUS | ironfence MariaDB / SQLite |"
        echo "| ---: | ---: | ---: | ---: | ---: |"
        for c in "${CONCURRENCIES[@]}"; do
            a=$(get ironfence-mariadb "$c" req/s) b=$(get freeradius-sql "$c" req/s) s=$(get ironfence "$c" req/s)
            echo "| $c | $(fmt_int "$a") | $(fmt_int "$b") | $(ratio "$a" "$b")× | $([ -n "$s" ] && calc "sprintf(\"%.0f %%\", 100 * $a / $s)" || echo "SQLite not run") |"
        done
        echo
        echo "Import of $DEVICES devices into MariaDB: $(getfact ironfence-mariadb.import_s) s; database ironfence $(getfact ironfence-mariadb.db_mb) MB, radius $(getfact freeradius-sql.db_mb) MB (InnoDB data + index)."
        counters ironfence-mariadb
        perf_summary ironfence-mariadb
    fi

    if has_store galera; then
        echo
        echo "### 3-node Galera in network namespaces, through one server"
        echo
        echo "Cluster size $(getfact galera.size), up in $(getfact galera.up_s) s (bootstrap + 2 rsync SST joins); ironfence in the first namespace on its local node (127.0.0.1:3306 there), the load generator in the same namespace. Device rows on the nodes after the run: $(getfact galera.nodes_rows). Import $(getfact ironfence-galera.import_s) s."
        echo
        echo "| concurrency | req/s | p50 ms | p99 ms | ironfence CPU µs/req | node 1 (local) mariadbd µs/req | node 2 | node 3 | errors |"
        echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        for c in "${CONCURRENCIES[@]}"; do
            measured ironfence-galera "$c" || continue
            l=ironfence-galera
            echo "| $c | $(fmt_int "$(get $l "$c" req/s)") | $(get $l "$c" p50_ms) | $(get $l "$c" p99_ms) | $(get $l "$c" server_cpu_us_per_req) | $(get $l "$c" db1_cpu_us_per_req) | $(get $l "$c" db2_cpu_us_per_req) | $(get $l "$c" db3_cpu_us_per_req) | $(get $l "$c" errors) |"
        done
        counters ironfence-galera
        perf_summary ironfence-galera
    fi

    if [ "$GROWTH" = 1 ]; then
        IFS=, read -r -a GS <<<"$GROWTH_SIZES"
        base=$(get "growth-${GS[0]}" 32 req/s)
        echo
        echo "### Growth: SQLite at c = 32 by device count"
        echo
        echo "| devices | ironfence req/s | % of ${GS[0]} | p99 ms | CPU µs/req | RSS MB | import s | database MB | seed s | FreeRADIUS users file: req/s | start s | RSS after start MB | RSS after run MB | users file MB |"
        echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        for n in "${GS[@]}"; do
            l=growth-$n fl=growth-fr-$n
            fr="– | – | – | – | –"
            if measured "$fl" 32; then
                fr="$(fmt_int "$(get "$fl" 32 req/s)") | $(getfact "$fl.start_s") | $(getfact "$fl.start_rss_mb") | $(get "$fl" 32 server_rss_mb) | $(getfact "$fl.users_mb")"
            fi
            echo "| $(fmt_int "$n") | $(fmt_int "$(get "$l" 32 req/s)") | $(calc "sprintf(\"%.0f %%\", 100 * $(get "$l" 32 req/s) / $base)") | $(get "$l" 32 p99_ms) | $(get "$l" 32 server_cpu_us_per_req) | $(get "$l" 32 server_rss_mb) | $(getfact "$l.import_s") | $(getfact "$l.db_mb") | $(getfact "$l.seed_s") | $fr |"
        done
    fi

    echo
    echo "### Load generator ceiling"
    echo
    table_head "–"
    system_row null 32 "null responder (generator ceiling)"

    # ---- targets (issue 8, "Figures"): reported, never asserted
    echo
    echo "### Targets (issue 8, Figures)"
    echo
    echo "| target | measured | verdict |"
    echo "| --- | --- | --- |"
    if has_store sqlite && measured ironfence 32 && measured freeradius 32; then
        I32=$(get ironfence 32 req/s) F32=$(get freeradius 32 req/s)
        P99=$(get ironfence 32 p99_ms) CPU=$(get ironfence 32 server_cpu_us_per_req)
        P50=$(get ironfence 1 p50_ms)
        DROPPED=$(metric ironfence 'ironfence_audit_records_total{outcome="dropped"}')
        DROPPED=${DROPPED:-0}
        echo "| SQLite, c = 32, req/s vs FreeRADIUS users file ≥ 2× | $(ratio "$I32" "$F32")× ($(fmt_int "$I32") vs $(fmt_int "$F32")) | $(verdict "$I32 >= 2 * $F32") |"
        echo "| SQLite, c = 32, server CPU per request ≤ 10 µs | $CPU µs | $(verdict "$CPU <= 10") |"
        echo "| SQLite, c = 32, p99 ≤ 0.5 ms | $P99 ms | $(verdict "$P99 <= 0.5") |"
        echo "| SQLite, c = 1, p50 ≤ 60 µs | $(calc "sprintf(\"%.0f\", $P50 * 1000)") µs | $(verdict "$P50 <= 0.060") |"
        echo "| audit records dropped (c = 256 step + whole sequence, ≥ $(fmt_int "$TOTAL") requests) = 0 | $(fmt_int "$DROPPED") dropped of $(fmt_int "$IF_TOT_SENT") requests | $(verdict "$DROPPED == 0 && $IF_TOT_SENT >= $TOTAL") |"
        echo "| RSS after $(fmt_int "$TOTAL") requests ≤ 64 MB | $IF_RSS MB after $(fmt_int "$IF_TOT_SENT") | $(verdict "$IF_TOT_SENT >= $TOTAL && $IF_RSS <= 64") |"
    else
        for t in "SQLite, c = 32, req/s vs FreeRADIUS users file ≥ 2×" "SQLite, c = 32, server CPU per request ≤ 10 µs" \
            "SQLite, c = 32, p99 ≤ 0.5 ms" "SQLite, c = 1, p50 ≤ 60 µs" "audit records dropped at c = 256, 1 M requests = 0" \
            "RSS after 1 M requests ≤ 64 MB"; do
            echo "| $t | $NOTRUN (--store sqlite) | – |"
        done
    fi
    if has_store mariadb && measured ironfence-mariadb 32 && measured freeradius-sql 32; then
        M32=$(get ironfence-mariadb 32 req/s) R32=$(get freeradius-sql 32 req/s)
        MDB=$(get ironfence-mariadb 32 mariadbd_cpu_us_per_req)
        if measured ironfence 32; then
            S32=$(get ironfence 32 req/s)
            echo "| MariaDB, c = 32, req/s vs FreeRADIUS rlm_sql (same mariadbd, same devices) ≥ 4×, and ≥ 50 % of SQLite in the same run | $(ratio "$M32" "$R32")× ($(fmt_int "$M32") vs $(fmt_int "$R32")); $(calc "sprintf(\"%.0f\", 100 * $M32 / $S32)") % of SQLite ($(fmt_int "$S32")) | $(verdict "$M32 >= 4 * $R32 && $M32 >= 0.5 * $S32") |"
        else
            echo "| MariaDB, c = 32, req/s vs FreeRADIUS rlm_sql ≥ 4×, and ≥ 50 % of SQLite in the same run | $(ratio "$M32" "$R32")× ($(fmt_int "$M32") vs $(fmt_int "$R32")); SQLite not run (use --store sqlite,mariadb) | $(verdict "$M32 >= 4 * $R32") for the 4× part; 50 % part $NOTRUN |"
        fi
        echo "| MariaDB, c = 32, mariadbd CPU per request ≤ 25 µs | $MDB µs (FreeRADIUS rlm_sql: $(get freeradius-sql 32 mariadbd_cpu_us_per_req) µs) | $(verdict "$MDB <= 25") |"
    else
        echo "| MariaDB, c = 32, req/s vs FreeRADIUS rlm_sql ≥ 4×, and ≥ 50 % of SQLite in the same run | $NOTRUN (--store mariadb) | – |"
        echo "| MariaDB, c = 32, mariadbd CPU per request ≤ 25 µs | $NOTRUN (--store mariadb) | – |"
    fi
    if has_store galera && measured ironfence-galera 32; then
        l=ironfence-galera
        echo "| 3-node Galera in namespaces, c = 32 through one server: reported, with CPU per request of ironfence and of mariadbd | $(fmt_int "$(get $l 32 req/s)") req/s, p99 $(get $l 32 p99_ms) ms; ironfence $(get $l 32 server_cpu_us_per_req) µs, mariadbd $(get $l 32 db1_cpu_us_per_req) (local) / $(get $l 32 db2_cpu_us_per_req) / $(get $l 32 db3_cpu_us_per_req) µs | met (reported) |"
    else
        echo "| 3-node Galera in namespaces, c = 32 through one server: reported | $NOTRUN (--store galera) | – |"
    fi
    if [ "$GROWTH" = 1 ] && [ -n "$base" ]; then
        for n in "${GS[@]:1}"; do
            l=growth-$n
            if measured "$l" 32; then
                g=$(get "$l" 32 req/s)
                fr=""
                measured "growth-fr-$n" 32 && fr="; FreeRADIUS users file: start $(getfact "growth-fr-$n.start_s") s, RSS $(get "growth-fr-$n" 32 server_rss_mb) MB, $(fmt_int "$(get "growth-fr-$n" 32 req/s)") req/s"
                echo "| growth: SQLite c = 32 at $(fmt_int "$n") devices ≥ 90 % of $(fmt_int "${GS[0]}") | $(calc "sprintf(\"%.0f\", 100 * $g / $base)") % ($(fmt_int "$g") vs $(fmt_int "$base")); import $(getfact "$l.import_s") s, database $(getfact "$l.db_mb") MB$fr | $(verdict "$g >= 0.9 * $base") |"
            fi
        done
    else
        echo "| growth: SQLite c = 32 at 1 M and 10 M devices ≥ 90 % of 100 k | $NOTRUN (--growth) | – |"
    fi
    N32=$(get null 32 req/s)
    MAXS=$(awk '$2 == "c=32" && $1 ~ /^target=(ironfence|freeradius|ironfence-mariadb|freeradius-sql|ironfence-galera|growth-[0-9]+|growth-fr-[0-9]+)$/ { for (i = 3; i <= NF; i++) if ($i ~ /^req\/s=/) { split($i, a, "="); if (a[2] > m) m = a[2] } } END { print m + 0 }' "$RESULTS")
    echo "| load generator ceiling far above both servers (> 2× the fastest c = 32 figure) | $(fmt_int "$N32") req/s = $(ratio "$N32" "$MAXS")× the fastest server ($(fmt_int "$MAXS")) | $(verdict "$N32 > 2 * $MAXS") |"
} >"$WORK/report.md"

echo "Result lines:"
cat "$RESULTS"
echo
cat "$WORK/report.md"
if [ -n "$OUT" ]; then
    cp "$WORK/report.md" "$OUT"
    log "report written to $OUT"
fi
