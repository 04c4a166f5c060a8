#!/usr/bin/env bash
# 802.1X benchmark: ironfence-loadgen eap (EAP-TLS, PEAP-MSCHAPv2; rustls client) against
# FreeRADIUS 3.2 (Debian package) and, with IRONFENCE=1, `ironfence serve`.
# Everything runs on 127.0.93.0/24; PKI and configs are generated in a temp dir, removed at exit.
#   bench/eap.sh                     # full matrix, 10 s per step
#   DURATION=5s CONC="1 8" bench/eap.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LG=${LG:-$ROOT/target/release/ironfence-loadgen}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONC=${CONC:-1 8 64}
METHODS=${METHODS:-tls peap}
TLSV=${TLSV:-1.2 1.3}
MODES=${MODES:-full resumed}
SECRET=bench-secret
FR_IP=127.0.93.1 LG_IP=127.0.93.10 FR_PORT=${FR_PORT:-21812}
TMP=$(mktemp -d /tmp/ironfence-eap-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
[ -x "$LG" ] || (cd "$ROOT" && cargo build --release -p ironfence-loadgen)

# --- test PKI (RSA-2048, as in the earlier FreeRADIUS measurements) ---
P=$TMP/pki; mkdir -p "$P"
o() { openssl "$@" 2>/dev/null; }
o req -x509 -newkey rsa:2048 -nodes -keyout "$P/ca.key" -out "$P/ca.pem" -days 2 -subj /CN=bench-ca \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
for n in server client; do
  o req -newkey rsa:2048 -nodes -keyout "$P/$n.key" -out "$P/$n.csr" -subj "/CN=$n.ironfence.test"
  if [ $n = server ]; then ext="subjectAltName=DNS:radius.ironfence.test
extendedKeyUsage=serverAuth"; else ext="subjectAltName=DNS:client.ironfence.test
extendedKeyUsage=clientAuth"; fi
  printf '%s\n' "$ext" > "$P/$n.ext"
  o x509 -req -in "$P/$n.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial -days 2 -out "$P/$n.pem" -extfile "$P/$n.ext"
done
chmod 644 "$P"/*

# --- FreeRADIUS 3.2: a minimal config of our own ---
R=$TMP/raddb; mkdir -p "$R/log" "$R/run" "$R/tlscache"
cat > "$R/radiusd.conf" <<CONF
prefix = /usr
localstatedir = $R
logdir = $R/log
run_dir = $R/run
raddbdir = $R
libdir = /usr/lib/freeradius
pidfile = $R/run/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 131072
log {
  destination = stderr
}
security {
  allow_vulnerable_openssl = yes
}
thread pool {
  start_servers = 4
  max_servers = 32
  min_spare_servers = 2
  max_spare_servers = 8
}
client lg {
  ipaddr = $LG_IP
  secret = $SECRET
  require_message_authenticator = yes
}
modules {
  files {
    filename = $R/users
  }
  mschap { }
  pap { }
  eap {
    default_eap_type = peap
    timer_expire = 60
    max_sessions = 65536
    tls-config tls-common {
      private_key_file = $P/server.key
      certificate_file = $P/server.pem
      ca_file = $P/ca.pem
      dh_file = ""
      fragment_size = 1024
      tls_min_version = "1.2"
      tls_max_version = "1.3"
      cipher_list = "DEFAULT"
      ecdh_curve = "prime256v1"
      cache {
        enable = yes
        lifetime = 24
        max_entries = 65536
        persist_dir = ""
      }
    }
    tls {
      tls = tls-common
    }
    peap {
      tls = tls-common
      default_eap_type = mschapv2
      virtual_server = inner
    }
    mschapv2 { }
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
    files
  }
  authenticate { eap }
  post-auth { }
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
  post-auth { }
}
CONF
printf 'bench Cleartext-Password := "bench-password"\n' > "$R/users"
freeradius -f -d "$R" -l stdout > "$TMP/freeradius.log" 2>&1 &
FR_PID=$!; PIDS+=("$FR_PID")
for _ in $(seq 50); do grep -q "Ready to process" "$TMP/freeradius.log" && break; sleep 0.1; done
grep -q "Ready to process" "$TMP/freeradius.log" || { cat "$TMP/freeradius.log"; exit 1; }

run() { # label server pid method tlsv mode c
  local args=(eap --label "$1" --server "$2" --bind $LG_IP --secret $SECRET --method "$4" --tls "$5"
    --ca "$P/ca.pem" --identity bench --password bench-password -c "$7"
    --warmup "$WARMUP" --duration "$DURATION" --server-pid "$3" --timeout 2s)
  [ "$4" = tls ] && args+=(--cert "$P/client.pem" --key "$P/client.key")
  [ "$6" = resumed ] && args+=(--resume)
  "$LG" "${args[@]}"
}
OUT=$TMP/results
for m in $METHODS; do for v in $TLSV; do for mode in $MODES; do for c in $CONC; do
  run freeradius "$FR_IP:$FR_PORT" "$FR_PID" "$m" "$v" "$mode" "$c" | tee -a "$OUT"
done; done; done; done
echo
printf '%-11s %-14s %-4s %-8s %3s %9s %8s %8s %7s %6s %10s %9s\n' target method tls mode c logins/s p50_ms p99_ms rounds failed srv_us/login lg_us/login
while read -r line; do
  declare -A kv=(); for f in $line; do kv[${f%%=*}]=${f#*=}; done
  printf '%-11s %-14s %-4s %-8s %3s %9s %8s %8s %7s %6s %10s %9s\n' "${kv[target]}" "${kv[method]}" "${kv[tls]}" "${kv[mode]}" "${kv[c]}" \
    "${kv[logins/s]}" "${kv[p50_ms]}" "${kv[p99_ms]}" "${kv[rounds_per_login]}" "${kv[failed]}" "${kv[server_cpu_us_per_login]}" "${kv[lg_cpu_us_per_login]}"
  unset kv
done < "$OUT"
