#!/usr/bin/env bash
# 802.1X benchmark: ironfence-loadgen eap (EAP-TLS, PEAP-MSCHAPv2; rustls client) against
# FreeRADIUS 3.2 (Debian package) and, with IRONFENCE=1, `ironfence serve`.
#
#   bench/eap.sh                  # the matrix: methods × TLS versions × full/resumed × in flight
#   bench/eap.sh check            # FreeRADIUS only, checked with eapol_test (wpa_supplicant):
#                                 # PEAP and EAP-TLS over TLS 1.2 and 1.3, and a resumed re-login
#   bench/eap.sh serve            # start FreeRADIUS (and ironfence with IRONFENCE=1), print how
#                                 # to reach them, wait for Ctrl-C (development, cluster tests)
#
# Environment (defaults in brackets):
#   DURATION [5s] WARMUP [1s]     measured window and warm-up of each step
#   CONC ["1 8 64"]               logins in flight
#   METHODS ["tls peap"] TLSV ["1.2 1.3"] MODES ["full resumed"]
#   KEY [rsa]                     key type of the test PKI: rsa (RSA-2048) or ec (ECDSA P-256)
#   IRONFENCE=1                   also measure target/release/ironfence serve (its 802.1X)
#   NO_BUILD=1                    use the binaries already in target/release
#   KEEP=1                        keep the work directory (PKI, configs, logs)
#   OUT=FILE                      also write the Markdown table to FILE
#
# Everything runs on 127.0.93.0/24 (loopback): FreeRADIUS on 127.0.93.1, ironfence on
# 127.0.93.2, the load generator and eapol_test from 127.0.93.10. The PKI and the configs are
# generated in a temporary directory; every process started here is stopped by its saved PID
# and the directory removed at exit (also on failure or Ctrl-C).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=${1:-bench}
case "$MODE" in bench | check | serve) ;; -h | --help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
*) echo "usage: bench/eap.sh [bench|check|serve] (try --help)" >&2; exit 2 ;;
esac
LG=${LG:-$ROOT/target/release/ironfence-loadgen}
IRONFENCE_BIN=${IRONFENCE_BIN:-$ROOT/target/release/ironfence}
FREERADIUS=/usr/sbin/freeradius
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
CONC=${CONC:-1 8 64}
METHODS=${METHODS:-tls peap}
TLSV=${TLSV:-1.2 1.3}
MODES=${MODES:-full resumed}
IRONFENCE=${IRONFENCE:-0}
# TEST FIXTURE secret and password, used only between processes of this script on loopback.
SECRET=bench-eap-fixture-secret
export LOADGEN_SECRET=$SECRET LOADGEN_PASSWORD=bench-password
USER_NAME=bench
FR_IP=127.0.93.1 IF_IP=127.0.93.2 LG_IP=127.0.93.10
FR_PORT=${FR_PORT:-21812} IF_PORT=${IF_PORT:-21822}

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ -x "$FREERADIUS" ] || die "$FREERADIUS not found: apt-get install freeradius"
[ "$MODE" != check ] || command -v eapol_test >/dev/null || die "eapol_test not found: apt-get install eapoltest"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ironfence-eap-bench.XXXXXX")
chmod 755 "$TMP" # FreeRADIUS may drop to the freerad user: it must reach its raddb
PIDS=()
alive() {
    local s
    s=$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) && [ -n "$s" ] && [ "$s" != Z ]
}
cleanup() {
    local rc=$? i p
    trap '' INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        p=${PIDS[$i]}
        kill "$p" 2>/dev/null || true
        for _ in $(seq 100); do alive "$p" || break; sleep 0.1; done
        alive "$p" && kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" = 1 ]; then log "work directory kept: $TMP"; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$MODE" = bench ] && [ "${NO_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && cargo build --release -p ironfence-loadgen) || die "build of ironfence-loadgen failed"
    if [ "$IRONFENCE" = 1 ]; then
        (cd "$ROOT" && cargo build --release -p ironfence) || die "build of ironfence failed"
    fi
fi

# --- test PKI: CA, server and client certificates, RSA-2048 or ECDSA P-256 (KEY) ---
KEY=${KEY:-rsa}
case "$KEY" in rsa) NEWKEY=rsa:2048 ;; ec) NEWKEY=ec:$TMP/p256.param ;; *) die "KEY is rsa or ec" ;; esac
P=$TMP/pki
mkdir -p "$P"
o() { openssl "$@" 2>"$P/openssl.err" || { cat "$P/openssl.err" >&2; die "openssl $1 failed"; }; }
[ "$KEY" = rsa ] || o genpkey -genparam -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$TMP/p256.param"
o req -x509 -newkey "$NEWKEY" -nodes -keyout "$P/ca.key" -out "$P/ca.pem" -days 2 -subj /CN=bench-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
for n in server client; do
    o req -newkey "$NEWKEY" -nodes -keyout "$P/$n.key" -out "$P/$n.csr" -subj "/CN=$n.ironfence.test"
    if [ $n = server ]; then
        printf 'subjectAltName=DNS:radius.ironfence.test\nextendedKeyUsage=serverAuth\n' >"$P/$n.ext"
    else
        printf 'subjectAltName=DNS:client.ironfence.test\nextendedKeyUsage=clientAuth\n' >"$P/$n.ext"
    fi
    o x509 -req -in "$P/$n.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial -days 2 \
        -out "$P/$n.pem" -extfile "$P/$n.ext"
done
chmod 644 "$P"/*

# --- FreeRADIUS 3.2: a minimal configuration of our own ---
# The outer server hands EAP to rlm_eap (tls, peap); PEAP's inner MSCHAPv2 goes to the `inner`
# virtual server, which finds the user's password with rlm_files and checks it with
# rlm_eap_mschapv2 / rlm_mschap. TLS 1.2 and 1.3 are allowed; the session cache is on, so
# that TLS 1.2 sessions (session ID and tickets) and TLS 1.3 tickets resume.
R=$TMP/raddb
mkdir -p "$R" "$TMP/log" "$TMP/run" "$TMP/tlscache"
: >"$R/dictionary" # the package's dictionaries in /usr/share/freeradius are loaded anyway
cat >"$R/radiusd.conf" <<CONF
# Lean FreeRADIUS 3.2 802.1X server for bench/eap.sh (see docs/benchmarks.md).
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = $TMP/log
raddbdir = $R
radacctdir = \${logdir}/radacct
name = freeradius
confdir = \${raddbdir}
modconfdir = \${confdir}/mods-config
certdir = $P
cadir = $P
run_dir = $TMP/run
db_dir = \${raddbdir}
libdir = /usr/lib/freeradius
pidfile = \${run_dir}/\${name}.pid
correct_escapes = true
max_request_time = 30
cleanup_delay = 5
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
	allow_vulnerable_openssl = yes
}
thread pool {
	start_servers = 4
	max_servers = 32
	min_spare_servers = 2
	max_spare_servers = 8
	max_requests_per_server = 0
	auto_limit_acct = no
}
client lg {
	ipaddr = $LG_IP
	# TEST FIXTURE secret (bench/eap.sh only, loopback only).
	secret = $SECRET
	require_message_authenticator = yes
	nas_type = other
}
modules {
	files {
		filename = \${raddbdir}/users
	}
	mschap {
	}
	eap {
		default_eap_type = tls
		timer_expire = 60
		ignore_unknown_eap_types = no
		max_sessions = \${max_requests}
		tls-config tls-common {
			private_key_file = $P/server.key
			certificate_file = $P/server.pem
			ca_file = $P/ca.pem
			cipher_list = "DEFAULT"
			cipher_server_preference = no
			tls_min_version = "1.2"
			tls_max_version = "1.3"
			ecdh_curve = "prime256v1"
			fragment_size = 1024
			cache {
				enable = yes
				lifetime = 24
				max_entries = 65536
				# 3.2 resumes only sessions it finds here (one file pair per session; the
				# in-memory OpenSSL cache of its per-thread contexts is not consulted).
				persist_dir = $TMP/tlscache
			}
			verify {
			}
		}
		tls {
			tls = tls-common
		}
		peap {
			tls = tls-common
			default_eap_type = mschapv2
			copy_request_to_tunnel = no
			use_tunneled_reply = no
			virtual_server = inner
		}
		mschapv2 {
		}
	}
}
server default {
	listen {
		type = auth
		ipaddr = $FR_IP
		port = $FR_PORT
		recv_buff = 4194304
	}
	authorize {
		eap {
			ok = return
		}
	}
	authenticate {
		eap
	}
	post-auth {
	}
}
server inner {
	authorize {
		eap {
			ok = return
		}
		files
		mschap
	}
	authenticate {
		eap
		Auth-Type MS-CHAP {
			mschap
		}
	}
	post-auth {
	}
}
CONF
printf '%s Cleartext-Password := "%s"\n' "$USER_NAME" "$LOADGEN_PASSWORD" >"$R/users"
chmod -R go-w "$R"

start_freeradius() {
    log "FreeRADIUS $("$FREERADIUS" -v | sed -n 's/.*Version \([0-9.]*\).*/\1/p;q') on $FR_IP:$FR_PORT"
    "$FREERADIUS" -f -d "$R" -l "$TMP/log/freeradius.log" >"$TMP/log/freeradius.stdout" 2>&1 &
    FR_PID=$!
    PIDS+=("$FR_PID")
    for _ in $(seq 100); do
        grep -q "Ready to process" "$TMP/log/freeradius.log" 2>/dev/null && return 0
        alive "$FR_PID" || break
        sleep 0.1
    done
    cat "$TMP/log/freeradius.stdout" "$TMP/log/freeradius.log" >&2 2>/dev/null || true
    die "FreeRADIUS did not start (its log is above)"
}
start_freeradius

# --- eapol_test: an independent client (wpa_supplicant's EAP peer) ---
# eapol_conf NAME METHOD TLS: the network block for PEAP-MSCHAPv2 or EAP-TLS over one TLS version.
eapol_conf() {
    local f=$TMP/eapol-$1.conf phase1
    case "$3" in
        1.2) phase1='tls_disable_tlsv1_0=1 tls_disable_tlsv1_1=1 tls_disable_tlsv1_2=0 tls_disable_tlsv1_3=1' ;;
        1.3) phase1='tls_disable_tlsv1_0=1 tls_disable_tlsv1_1=1 tls_disable_tlsv1_2=1 tls_disable_tlsv1_3=0' ;;
    esac
    {
        echo 'network={'
        echo '  key_mgmt=WPA-EAP'
        echo "  ca_cert=\"$P/ca.pem\""
        echo '  domain_match="radius.ironfence.test"'
        echo "  phase1=\"$phase1\""
        if [ "$2" = peap ]; then
            echo '  eap=PEAP'
            echo "  identity=\"$USER_NAME\""
            echo "  password=\"$LOADGEN_PASSWORD\""
            echo '  phase2="auth=MSCHAPV2"'
        else
            echo '  eap=TLS'
            echo '  identity="client.ironfence.test"'
            echo "  client_cert=\"$P/client.pem\""
            echo "  private_key=\"$P/client.key\""
        fi
        echo '}'
    } >"$f"
    echo "$f"
}

check() {
    local bad=0 m v out conf res ok
    for m in peap tls; do
        for v in 1.2 1.3; do
            conf=$(eapol_conf "$m-$v" "$m" "$v")
            out=$TMP/eapol-$m-$v.log
            # -r1: a second login on the same supplicant, which offers the cached TLS session.
            eapol_test -c "$conf" -a "$FR_IP" -p "$FR_PORT" -s "$SECRET" -A "$LG_IP" -r1 -t 10 >"$out" 2>&1 || true
            res=$(tail -n 1 "$out")
            ok=0
            [ "$res" = SUCCESS ] && grep -q '^MPPE keys OK: 2' "$out" && ok=1
            printf 'eapol_test %-4s TLS %s: %-8s MPPE: %-12s version: %-8s resumed re-login: %s\n' "$m" "$v" "$res" \
                "$(grep -o 'MPPE keys OK: [0-9]*  mismatch: [0-9]*' "$out" | tail -n 1 | sed 's/  / /')" \
                "$(grep -o 'TLSv1\.[0-9]' "$out" | sort -u | tr '\n' ' ')" \
                "$(grep -q 'Handshake finished - resumed=1' "$out" && echo yes || echo NO)"
            grep -q 'Handshake finished - resumed=1' "$out" || ok=0
            [ "$ok" = 1 ] || { bad=1; tail -n 30 "$out" >&2; }
        done
    done
    return "$bad"
}

if [ "$MODE" = check ]; then
    check || die "eapol_test failed (logs above; KEEP=1 keeps $TMP)"
    exit 0
fi

# udp_bound IP PORT: something listens on that UDP address.
udp_bound() { ss -Hnlu "src $1:$2" 2>/dev/null | grep -q .; }

# --- ironfence (IRONFENCE=1): its own conf dir, the same PKI and user ---
start_ironfence() {
    local d=$TMP/ironfence
    [ -x "$IRONFENCE_BIN" ] || die "$IRONFENCE_BIN not found (cargo build --release -p ironfence)"
    mkdir -p "$d/conf/ssl" "$d/state"
    cat >"$d/conf/pf.conf" <<EOF
[general]
state_dir = $d/state

[database]
type = sqlite

[radius]
listen = $IF_IP
auth_port = $IF_PORT
acct_port = $((IF_PORT + 1))

[metrics]
listen = 127.0.0.1:$((IF_PORT + 2))
EOF
    cat >"$d/conf/switches.conf" <<EOF
[default]
require_message_authenticator = yes
VlanMap = Y
registrationVlan = 2
isolationVlan = 3
defaultVlan = 100
guestVlan = 200

[$LG_IP]
description = benchmark load generator
type = Generic
# TEST FIXTURE secret (bench/eap.sh only, loopback only). Never use it for a real switch.
radiusSecret = $SECRET
require_message_authenticator = yes
EOF
    cat >"$d/conf/eap.conf" <<EOF
[eap]
methods = peap,tls
tls_min_version = 1.2
tls_max_version = 1.3
fragment_size = 1024
resumption = enabled
certificate = $P/server.pem
private_key = $P/server.key
ca = $P/ca.pem
server_name = radius.ironfence.test
password_sources = local
EOF
    cp "$ROOT/conf/roles.conf" "$ROOT/conf/authentication.conf" "$d/conf/"
    chmod 600 "$d/conf/"*.conf # they hold the (fixture) secret
    "$IRONFENCE_BIN" --conf-dir "$d/conf" checkup >"$d/checkup.log" 2>&1 ||
        { cat "$d/checkup.log" >&2; die "ironfence checkup failed (log above)"; }
    printf '%s\n' "$LOADGEN_PASSWORD" >"$d/password"
    chmod 600 "$d/password"
    "$IRONFENCE_BIN" --conf-dir "$d/conf" user add "$USER_NAME" --password-file "$d/password" >"$d/user.log" 2>&1 ||
        { cat "$d/user.log" >&2; die "ironfence user add failed (log above)"; }
    log "ironfence on $IF_IP:$IF_PORT"
    "$IRONFENCE_BIN" --conf-dir "$d/conf" serve >"$d/serve.log" 2>&1 &
    IF_PID=$!
    PIDS+=("$IF_PID")
    for _ in $(seq 300); do
        udp_bound "$IF_IP" "$IF_PORT" && return 0
        alive "$IF_PID" || break
        sleep 0.1
    done
    tail -n 30 "$d/serve.log" >&2
    die "ironfence did not start (log above)"
}
if [ "$IRONFENCE" = 1 ] && [ "$MODE" != check ]; then
    start_ironfence
fi

if [ "$MODE" = serve ]; then
    log "FreeRADIUS PID $FR_PID on $FR_IP:$FR_PORT, clients from $LG_IP, secret $SECRET, user $USER_NAME / $LOADGEN_PASSWORD"
    [ "$IRONFENCE" = 1 ] && log "ironfence PID $IF_PID on $IF_IP:$IF_PORT (conf dir $TMP/ironfence/conf, log $TMP/ironfence/serve.log)"
    log "PKI in $P (ca.pem, client.pem, client.key); logs in $TMP/log. Ctrl-C stops everything."
    while alive "$FR_PID"; do sleep 1; done
    die "FreeRADIUS exited"
fi

# --- the matrix ---
RESULTS=$TMP/results
: >"$RESULTS"
# run LABEL ADDR PID METHOD TLS MODE C: one timed step; its result line goes to $RESULTS.
run() {
    local args=(eap --label "$1" --server "$2" --bind "$LG_IP" --method "$4" --tls "$5"
        --ca "$P/ca.pem" -c "$7" --warmup "$WARMUP" --duration "$DURATION" --server-pid "$3" --timeout 2s)
    if [ "$4" = tls ]; then
        args+=(--identity client.ironfence.test --cert "$P/client.pem" --key "$P/client.key")
    else
        args+=(--identity "$USER_NAME")
    fi
    [ "$6" = resumed ] && args+=(--resume)
    local line
    line=$("$LG" "${args[@]}") || die "ironfence-loadgen failed: ${args[*]}"
    echo "$line" >>"$RESULTS"
    log "$line"
}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
TARGETS=("freeradius $FR_IP:$FR_PORT $FR_PID")
[ "$IRONFENCE" = 1 ] && TARGETS+=("ironfence $IF_IP:$IF_PORT $IF_PID")
for t in "${TARGETS[@]}"; do
    read -r label addr pid <<<"$t"
    for m in $METHODS; do for v in $TLSV; do for mode in $MODES; do for c in $CONC; do
        run "$label" "$addr" "$pid" "$m" "$v" "$mode" "$c"
    done; done; done; done
done

# --- the table (Markdown) ---
# fails: the failed count of the line in kv, with the non-zero reasons.
fails() {
    local r why=()
    for r in timeouts rejects key_mismatch tls_errors protocol_errors io_errors; do
        [ "${kv[$r]:-0}" = 0 ] || why+=("$r ${kv[$r]}")
    done
    if [ ${#why[@]} = 0 ]; then echo "${kv[failed]}"; else echo "${kv[failed]} ($(IFS=,; echo "${why[*]}"))"; fi
}
table() {
    echo "| target | method | TLS | mode | in flight | logins/s | p50 ms | p99 ms | resumed % | resumed p50 ms | server CPU ms/login | loadgen CPU ms/login | failed |"
    echo "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    local line f
    while read -r line; do
        declare -A kv=()
        for f in $line; do kv[${f%%=*}]=${f#*=}; done
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${kv[target]}" "${kv[method]}" \
            "${kv[tls]}" "${kv[mode]}" "${kv[c]}" "${kv[logins/s]}" "${kv[p50_ms]}" "${kv[p99_ms]}" "${kv[resumed_pct]}" \
            "$([ "${kv[resumed]}" = 0 ] && echo - || echo "${kv[resumed_p50_ms]}")" \
            "$(awk -v u="${kv[server_cpu_us_per_login]:-nan}" 'BEGIN { if (u == "nan") print "n/a"; else printf "%.2f", u / 1000 }')" \
            "$(awk -v u="${kv[lg_cpu_us_per_login]:-nan}" 'BEGIN { if (u == "nan") print "n/a"; else printf "%.2f", u / 1000 }')" \
            "$(fails)"
        unset kv
    done <"$RESULTS"
}
echo
echo "802.1X logins, $(date -u +%FT%TZ), $(nproc) CPUs, $KEY keys, load average $LOAD_BEFORE before the first step, $DURATION per step after $WARMUP warm-up"
echo
if [ -n "${OUT:-}" ]; then table | tee "$OUT"; else table; fi
