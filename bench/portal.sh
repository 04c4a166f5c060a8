#!/usr/bin/env bash
# Captive-portal benchmark: guest registrations/s end to end (GET the landing page with its
# session cookie and CSRF token, POST the guest form; the node is registered, the person
# recorded and the CoA scheduled), against `ironfence serve` (release, SQLite) on loopback.
# Same-run baseline: the same client fetching only the landing page (the client's ceiling and
# the cost of a page without a write).
#
#   bench/portal.sh [--devices N] [--threads T] [--no-build]
#
# Devices are 127.0.77.x / 127.0.78.x source addresses; their ip4log rows come from one batch
# of Accounting-Start requests (radclient) before the timed part. Everything runs in a
# temporary directory; the daemon started here is stopped by its PID on exit. Figures are
# printed, never asserted. See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEVICES=400
THREADS=8
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --devices) DEVICES=$2; shift ;;
        --threads) THREADS=$2; shift ;;
        --no-build) BUILD=0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$DEVICES" -le 500 ] || { echo "--devices: at most 500" >&2; exit 2; }
[ "$BUILD" = 1 ] && cargo build --release --locked -p ironfence
BIN=$ROOT/target/release/ironfence
WORK=$(mktemp -d /tmp/ironfence-portal-bench.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
# TEST FIXTURE secret, for this benchmark only.
SECRET=portal-bench-test-fixture-secret-0123456789
mkdir -p "$WORK/conf"
cat > "$WORK/conf/pf.conf" <<PF
[general]
state_dir = $WORK/state
[database]
type = sqlite
[radius]
listen = 127.0.76.1
auth_port = 17612
acct_port = 17613
[metrics]
listen =
[interface lo-reg]
ip = 127.0.76.1
mask = 255.255.255.0
type = internal
enforcement = vlan
[dns]
port = 17653
[ports]
portal_http = 17680
PF
printf '[default]\nregistrationVlan = 2\n\n[127.0.0.1]\nradiusSecret = %s\n' "$SECRET" > "$WORK/conf/switches.conf"
printf '[guest]\ntype = Null\ndescription = Guest access\n\n[guest rule aup]\naction0 = set_role = guest\naction1 = set_access_duration = 1D\n' > "$WORK/conf/authentication.conf"
chmod 640 "$WORK/conf/pf.conf" "$WORK/conf/switches.conf"
"$BIN" --conf-dir "$WORK/conf" serve > "$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 100); do grep -q "ironfence ready" "$WORK/serve.log" && break; sleep 0.1; done
grep -q "ironfence ready" "$WORK/serve.log" || { cat "$WORK/serve.log"; exit 1; }

ip_of() { local i=$1; echo "127.0.$((77 + i / 250)).$((1 + i % 250))"; }
: > "$WORK/acct"
for i in $(seq 0 $((DEVICES - 1))); do
    printf 'Acct-Status-Type = Start\nUser-Name = "02:77:00:00:%02x:%02x"\nCalling-Station-Id = "02:77:00:00:%02x:%02x"\nNAS-Port = 1\nAcct-Session-Id = "b%d"\nFramed-IP-Address = %s\n\n' \
        $((i / 256)) $((i % 256)) $((i / 256)) $((i % 256)) "$i" "$(ip_of "$i")" >> "$WORK/acct"
done
radclient -q -p 50 -f "$WORK/acct" 127.0.76.1:17613 acct "$SECRET"

python3 - "$DEVICES" "$THREADS" <<'PY'
import http.client, re, sys, threading, time, urllib.parse
devices, threads = int(sys.argv[1]), int(sys.argv[2])
def ip(i): return "127.0.%d.%d" % (77 + i // 250, 1 + i % 250)
def landing(i):
    c = http.client.HTTPConnection("127.0.76.1", 17680, source_address=(ip(i), 0), timeout=10)
    c.request("GET", "/captive-portal")
    r = c.getresponse(); body = r.read().decode()
    cookie = r.getheader("Set-Cookie", "").split(";")[0]
    return c, r.status, body, cookie
def register(i):
    c, status, body, cookie = landing(i)
    token = re.search(r'name="csrf" value="([^"]+)"', body).group(1)
    form = urllib.parse.urlencode({"csrf": token, "destination_url": "", "name": "Bench %d" % i, "email": "", "aup": "yes"})
    c.request("POST", "/captive-portal/guest/guest", form, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    r = c.getresponse(); text = r.read().decode(); c.close()
    return r.status == 200 and "registered" in text
def only_landing(i):
    c, status, _, _ = landing(i); c.close(); return status == 200
def run(name, f):
    ok = [0]; lat = []; lock = threading.Lock()
    def worker(k):
        for i in range(k, devices, threads):
            t = time.perf_counter(); good = f(i); d = time.perf_counter() - t
            with lock:
                ok[0] += good; lat.append(d)
    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    [t.start() for t in ts]; [t.join() for t in ts]
    wall = time.perf_counter() - t0; lat.sort()
    print("%-34s %5d/%d ok  %7.1f /s  median %6.2f ms  p99 %6.2f ms" % (name, ok[0], devices, devices / wall, lat[len(lat)//2]*1e3, lat[int(len(lat)*.99)]*1e3))
run("baseline: landing page only", only_landing)
run("guest registration (GET + POST)", register)
PY
echo "nodes registered: $("$BIN" --conf-dir "$WORK/conf" node list --status reg --limit 100000 2>/dev/null | grep -c 02:77 || true)"
