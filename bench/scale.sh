#!/usr/bin/env bash
# certwatch at scale on one process: 1,000, 10,000 and 100,000 targets against nginx on
# loopback, probed every 5 minutes. For each count: configuration load time, start-up,
# time to probe every target once, resident memory (and KB per target), how late
# scheduled probes start (certwatch_probe_start_delay_seconds over a steady window,
# while /metrics is scraped), and GET /metrics with and without gzip (latency, size).
# See bench/README.md. Traffic goes to 127.0.0.0/8 only; everything started is stopped
# at exit. Nothing is asserted: figures are printed and written to RESULTS.
#
# Environment:
#   SMOKE=1          COUNTS=2000, INTERVAL=20s, WINDOW=25, SCRAPES=3 (CI; about a minute)
#   COUNTS="1000 10000 100000"   target counts, one certwatch each, in this order
#   INTERVAL=5m      every target's probe interval
#   WINDOW=300       seconds of steady state over which start delays are measured, for
#                    the largest count (one whole interval: every target starts once);
#                    the smaller counts use at most 60
#   SCRAPES=10       timed gzip scrapes per count, spread over the window
#   ADDRS=16         loopback addresses nginx listens on (127.0.0.1 .. 127.0.0.ADDRS)
#   CHAINS=3         distinct certificate chains (one nginx port each, on every address)
#   CONCURRENCY=64   certwatch's `concurrency`
#   NGINX_WORKERS=2  nginx worker processes (the server half of every handshake)
#   FILL_TIMEOUT=900 seconds to wait for every target's first probe
#   RESULTS=FILE     JSON output (default bench/scale-results.json)
#   CERTWATCH_BIN=…  use this binary instead of building target/release/certwatch
#   KEEP_TMP=1       keep the temporary directory
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ "${SMOKE:-0}" == 1 ]]; then
    COUNTS=${COUNTS:-2000}
    INTERVAL=${INTERVAL:-20s}
    WINDOW=${WINDOW:-25}
    SCRAPES=${SCRAPES:-3}
else
    COUNTS=${COUNTS:-"1000 10000 100000"}
    INTERVAL=${INTERVAL:-5m}
    WINDOW=${WINDOW:-300}
    SCRAPES=${SCRAPES:-10}
fi
ADDRS=${ADDRS:-16}
CHAINS=${CHAINS:-3}
CONCURRENCY=${CONCURRENCY:-64}
NGINX_WORKERS=${NGINX_WORKERS:-2}
FILL_TIMEOUT=${FILL_TIMEOUT:-900}
RESULTS=${RESULTS:-$ROOT/bench/scale-results.json}

log() { echo "scale.sh: $*" >&2; }

for tool in openssl curl python3 gzip; do
    command -v "$tool" >/dev/null || { log "$tool is required (apt-get install nginx-light openssl curl python3)"; exit 2; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || { log "nginx is required (apt-get install nginx-light)"; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/certwatch-scale.XXXXXX")
NGINX_PID=""
CW_PID=""
cleanup() {
    local status=$? pid
    for pid in $CW_PID $NGINX_PID; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $CW_PID $NGINX_PID; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port free on every address nginx listens on, below the ephemeral range.
free_port() {
    local port low a busy
    low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    for _ in $(seq 200); do
        port=$((10000 + RANDOM % (low - 10000)))
        busy=0
        for ((a = 1; a <= ADDRS; a++)); do
            if (exec 3<>"/dev/tcp/127.0.0.$a/$port") 2>/dev/null; then busy=1; break; fi
        done
        ((busy)) || { echo "$port"; return; }
    done
    log "no free port found"
    return 1
}
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# --- the binary ------------------------------------------------------------------------
if [[ -n "${CERTWATCH_BIN:-}" ]]; then
    BIN=$CERTWATCH_BIN
else
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet)
    BIN=$ROOT/target/release/certwatch
fi
[[ -x "$BIN" ]] || { log "no binary at $BIN"; exit 2; }

# --- certificates: one root, CHAINS intermediates, a leaf under each (ECDSA P-256) -------
cd "$TMP"
ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
cat >ext.cnf <<'EOF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
ec_key root.key
openssl req -x509 -new -key root.key -sha256 -days 3650 -subj "/O=certwatch bench/CN=certwatch scale root" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out root.pem 2>/dev/null
for ((c = 0; c < CHAINS; c++)); do
    ec_key "inter$c.key"
    ec_key "leaf$c.key"
    openssl req -new -key "inter$c.key" -subj "/O=certwatch bench/CN=certwatch scale intermediate $c" -out "inter$c.csr" 2>/dev/null
    openssl x509 -req -in "inter$c.csr" -CA root.pem -CAkey root.key -CAcreateserial -days 1825 -sha256 \
        -extfile ext.cnf -extensions ca -out "inter$c.pem" 2>/dev/null
    openssl req -new -key "leaf$c.key" -subj "/O=certwatch bench/CN=localhost" -out "leaf$c.csr" 2>/dev/null
    openssl x509 -req -in "leaf$c.csr" -CA "inter$c.pem" -CAkey "inter$c.key" -CAcreateserial -days $((60 + 30 * c)) \
        -sha256 -extfile ext.cnf -extensions leaf -out "leaf$c.pem" 2>/dev/null
    cat "leaf$c.pem" "inter$c.pem" root.pem >"chain$c.pem"
done

# --- nginx: one worker, CHAINS ports, each on ADDRS loopback addresses ---------------------
# Many (address, port) pairs give many 4-tuples: each has its own ephemeral port range
# and TIME_WAIT slots, which one address and port would exhaust at 100,000 targets.
declare -a PORT
mkdir -p nginx/logs nginx/tmp
{
    echo "worker_processes $NGINX_WORKERS; worker_rlimit_nofile 16384; pid $TMP/nginx/nginx.pid; error_log $TMP/nginx/logs/error.log warn;"
    echo "events { worker_connections 8192; }"
    echo "http { access_log off; client_body_temp_path $TMP/nginx/tmp/body; proxy_temp_path $TMP/nginx/tmp/proxy;"
    echo "  fastcgi_temp_path $TMP/nginx/tmp/fcgi; uwsgi_temp_path $TMP/nginx/tmp/uwsgi; scgi_temp_path $TMP/nginx/tmp/scgi;"
    for ((c = 0; c < CHAINS; c++)); do
        PORT[c]=$(free_port)
        echo "  server { server_name localhost;"
        for ((a = 1; a <= ADDRS; a++)); do echo "    listen 127.0.0.$a:${PORT[c]} ssl;"; done
        echo "    ssl_certificate $TMP/chain$c.pem; ssl_certificate_key $TMP/leaf$c.key;"
        echo "    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache off; ssl_session_tickets off;"
        echo "    location / { return 200 \"ok\"; } }"
    done
    echo "}"
} >nginx/nginx.conf
"$NGINX" -e "$TMP/nginx/logs/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.$ADDRS/${PORT[CHAINS - 1]}") 2>/dev/null && break
    kill -0 "$NGINX_PID" 2>/dev/null || { log "nginx exited:"; cat nginx/logs/error.log >&2; exit 1; }
    sleep 0.1
done
log "nginx (pid $NGINX_PID): ports ${PORT[*]} on 127.0.0.1-127.0.0.$ADDRS, $CHAINS chains"

# --- one run per count --------------------------------------------------------------------
: >"$TMP/rows.jsonl"
largest=$(tr ' ' '\n' <<<"$COUNTS" | sort -n | tail -1)

run() {
    local n=$1 http_port conf window t0 config_check_s started startup_s fill_s
    http_port=$(free_port)
    conf=$TMP/certwatch-$n.yml
    {
        echo "listen: 127.0.0.1:$http_port"
        echo "concurrency: $CONCURRENCY"
        echo "defaults: {interval: $INTERVAL, timeout: 10s, trust: none, tls: {ca_file: $TMP/root.pem}}"
        echo "targets:"
        awk -v n="$n" -v addrs="$ADDRS" -v chains="$CHAINS" -v ports="${PORT[*]}" 'BEGIN {
            split(ports, p, " ")
            for (i = 0; i < n; i++)
                printf "  - {address: \"127.0.0.%d:%s\", name: \"t-%06d\", server_name: localhost}\n",
                    1 + i % addrs, p[1 + i % chains], i
        }'
    } >"$conf"
    window=$WINDOW
    ((n == largest)) || window=$((WINDOW < 60 ? WINDOW : 60))

    # Loading alone: `config check` parses and resolves the whole file.
    t0=$(now)
    "$BIN" config check "$conf" >/dev/null
    config_check_s=$(since "$t0")

    local metrics=http://127.0.0.1:$http_port/metrics
    started=$(now)
    "$BIN" --config "$conf" --log-level warn 2>"$TMP/certwatch-$n.log" &
    CW_PID=$!
    until curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$http_port/-/healthy"; do
        kill -0 "$CW_PID" 2>/dev/null || { log "certwatch exited:"; cat "$TMP/certwatch-$n.log" >&2; exit 1; }
        sleep 0.05
    done
    startup_s=$(since "$started")
    log "N=$n: config check ${config_check_s}s, serving after ${startup_s}s; waiting for every first probe"

    # Every target probed once: once certwatch's CPU use falls to the steady rate of
    # rounds spread over the interval (under half a core for 2 s), or every 5 s, a
    # scrape counts the targets that have a probe.
    local deadline=$((SECONDS + FILL_TIMEOUT)) hz last cpu quiet=0 probed=0 rss0=""
    hz=$(getconf CLK_TCK)
    last=$(cpu_ticks "$CW_PID")
    while ((SECONDS < deadline)); do
        sleep 1
        kill -0 "$CW_PID" 2>/dev/null || { log "certwatch exited:"; cat "$TMP/certwatch-$n.log" >&2; exit 1; }
        cpu=$(cpu_ticks "$CW_PID")
        if ((cpu - last < hz / 2)); then quiet=$((quiet + 1)); else quiet=0; fi
        last=$cpu
        # Quiet, or every 5 s in any case (a short interval keeps a debug build busy).
        ((quiet >= 2 || SECONDS % 5 == 0)) || continue
        [[ -n "$rss0" ]] || rss0=$(status_kb "$CW_PID" VmRSS)
        curl -s --max-time 60 -H 'Accept-Encoding: gzip' "$metrics" | gzip -dc >"$TMP/m0" 2>/dev/null ||
            curl -s --max-time 60 "$metrics" >"$TMP/m0"
        probed=$(grep -c '^certwatch_last_probe_timestamp_seconds' "$TMP/m0" || true)
        [[ "$probed" == "$n" ]] && break
        quiet=0
    done
    fill_s=$(since "$started")
    [[ "$probed" == "$n" ]] || { log "N=$n: only $probed of $n probed after ${FILL_TIMEOUT}s"; exit 1; }
    local failed
    failed=$(grep -c '^certwatch_probe_success{.*} 0$' "$TMP/m0" || true)
    log "N=$n: every target probed after ${fill_s}s ($failed unsuccessful); steady window ${window}s"

    # The steady window: start delays between two snapshots of the histogram, gzip
    # scrapes spread over it, and one plain scrape for the size ratio.
    local times=$TMP/times-$n c0 c1 i gap
    : >"$times"
    gap=$(awk -v w="$window" -v s="$SCRAPES" 'BEGIN { printf "%.2f", w / (s + 1) }')
    c0=$(cpu_ticks "$CW_PID")
    t0=$(now)
    for ((i = 0; i < SCRAPES; i++)); do
        sleep "$gap"
        curl -s --max-time 60 -H 'Accept-Encoding: gzip' -o "$TMP/gz" \
            -w '%{time_total} %{size_download}\n' "$metrics" >>"$times"
    done
    local rest
    rest=$(awk -v w="$window" -v t="$(since "$t0")" 'BEGIN { r = w - t; printf "%.2f", (r > 0 ? r : 0) }')
    sleep "$rest"
    curl -s --max-time 60 -o "$TMP/m1" -w '%{time_total} %{size_download}\n' "$metrics" >"$TMP/plain-$n"
    c1=$(cpu_ticks "$CW_PID")
    local rss hwm
    rss=$(status_kb "$CW_PID" VmRSS)
    hwm=$(status_kb "$CW_PID" VmHWM)
    kill -TERM "$CW_PID"
    wait "$CW_PID" || true
    CW_PID=""

    python3 - "$n" "$TMP/m0" "$TMP/m1" "$times" "$TMP/plain-$n" "$config_check_s" "$startup_s" "$fill_s" \
        "$failed" "${rss0:-0}" "$rss" "$hwm" "$c0" "$c1" "$hz" "$window" >>"$TMP/rows.jsonl" <<'EOF'
import json, math, sys
(n, m0, m1, times, plain, check_s, startup_s, fill_s, failed, rss0, rss, hwm, c0, c1, hz,
 window) = sys.argv[1:]
NAME = "certwatch_probe_start_delay_seconds"

def histogram(path):
    buckets, count = {}, None
    for line in open(path, errors="replace"):
        if line.startswith(NAME + "_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(le)] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(NAME + "_count"):
            count = float(line.rsplit(" ", 1)[1])
    return buckets, count

def quantile(q, buckets):
    """As PromQL's histogram_quantile: linear within the bucket."""
    les = sorted(buckets)
    total = buckets[les[-1]]
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for le in les:
        if buckets[le] >= rank:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * (rank - below) / max(buckets[le] - below, 1e-9)
        lower, below = le, buckets[le]
    return les[-1]

b0, _ = histogram(m0)
b1, _ = histogram(m1)
delay = None
if b0 and b1:
    d = {le: b1[le] - b0.get(le, 0.0) for le in b1}
    total = d[max(d)]
    within = lambda s: d.get(s, float("nan")) / total if total else None
    delay = {"probes": total, "p50_s": quantile(0.5, d), "p99_s": quantile(0.99, d),
             "max_bucket_s": next((le for le in sorted(d) if d[le] >= total), None),
             "within_1s": within(1.0), "within_100ms": within(0.1)}
rows = [l.split() for l in open(times) if l.strip()]
ms = sorted(float(r[0]) * 1000 for r in rows)
rank = lambda p: ms[max(0, math.ceil(len(ms) * p / 100) - 1)] if ms else None
plain_s, plain_bytes = open(plain).read().split()
gz_bytes = float(rows[-1][1]) if rows else None
n = int(n)
row = {
    "targets": n, "config_check_s": float(check_s), "startup_s": float(startup_s),
    "fill_s": float(fill_s), "failed": int(failed), "window_s": float(window),
    "rss_before_scrapes_mb": round(int(rss0) / 1024, 1), "rss_mb": round(int(rss) / 1024, 1),
    "hwm_mb": round(int(hwm) / 1024, 1),
    "kb_per_target": round(int(rss) / n, 2),
    "metrics_gzip_p50_ms": rank(50), "metrics_gzip_p99_ms": rank(99),
    "metrics_gzip_mb": round(gz_bytes / 1048576, 2) if gz_bytes else None,
    "metrics_plain_ms": round(float(plain_s) * 1000, 1),
    "metrics_plain_mb": round(float(plain_bytes) / 1048576, 2),
    "gzip_ratio": round(gz_bytes / float(plain_bytes), 4) if gz_bytes else None,
    "cpu_cores_in_window": round((int(c1) - int(c0)) / int(hz) / float(window), 3),
    "start_delay": delay,
}
print(json.dumps(row))
EOF
    log "N=$n: $(tail -1 "$TMP/rows.jsonl")"
}

for n in $COUNTS; do run "$n"; done

python3 - "$TMP/rows.jsonl" "$RESULTS" "$INTERVAL" "$CONCURRENCY" "$ADDRS" "$CHAINS" <<'EOF'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
out, interval, conc, addrs, chains = sys.argv[2:]
rows.sort(key=lambda r: r["targets"])
# Marginal memory: RSS growth per added target between consecutive counts.
for a, b in zip(rows, rows[1:]):
    b["kb_per_added_target"] = round((b["rss_mb"] - a["rss_mb"]) * 1024 / (b["targets"] - a["targets"]), 2)
result = {
    "machine": {"cpus": os.cpu_count(),
                "model": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), ""),
                "loadavg": open("/proc/loadavg").read().split()[:3]},
    "interval": interval, "concurrency": int(conc), "loopback_addresses": int(addrs), "chains": int(chains),
    "runs": rows,
}
with open(out, "w") as fh:
    json.dump(result, fh, indent=2)
    fh.write("\n")
f = lambda x, s=".1f": "-" if x is None else format(x, s)
print()
print(f"certwatch at scale: interval {interval}, concurrency {conc}, {chains} chains on {addrs} loopback addresses; "
      f"{result['machine']['cpus']} CPUs {result['machine']['model']}, load {' '.join(result['machine']['loadavg'])}")
print(f"{'targets':>8} {'check s':>7} {'start s':>7} {'fill s':>6} {'RSS MB':>7} {'HWM MB':>7} {'KB/tgt':>7} {'KB/add':>7} "
      f"{'delay p50':>9} {'p99':>7} {'<=1s':>7} {'gz p50 ms':>9} {'p99':>7} {'gz MB':>6} {'plain MB':>8} {'ratio':>6} {'cores':>5}")
for r in rows:
    d = r["start_delay"] or {}
    print(f"{r['targets']:>8} {r['config_check_s']:>7.2f} {r['startup_s']:>7.2f} {r['fill_s']:>6.0f} {r['rss_mb']:>7.1f} "
          f"{r['hwm_mb']:>7.1f} {r['kb_per_target']:>7.2f} {f(r.get('kb_per_added_target'), '.2f'):>7} "
          f"{f(d.get('p50_s'), '.4f'):>9} {f(d.get('p99_s'), '.3f'):>7} {f(d.get('within_1s'), '.4f'):>7} "
          f"{f(r['metrics_gzip_p50_ms']):>9} {f(r['metrics_gzip_p99_ms']):>7} {f(r['metrics_gzip_mb'], '.2f'):>6} "
          f"{r['metrics_plain_mb']:>8.2f} {f(r['gzip_ratio'], '.3f'):>6} {r['cpu_cores_in_window']:>5.2f}")
print("check: `certwatch config check` wall time; start: exec to the first HTTP answer; fill: exec until every target")
print("was probed; RSS/HWM: VmRSS/VmHWM at the end of the window; KB/tgt: RSS / targets; KB/add: RSS growth per")
print("target added since the previous count; delay: certwatch_probe_start_delay_seconds over the window (p50/p99")
print("interpolated in buckets as histogram_quantile does; <=1s: share that started within 1 s of its slot);")
print("gz: GET /metrics with Accept-Encoding: gzip during the window (curl time_total); cores: certwatch CPU in")
print("the window. JSON: " + out)
EOF
