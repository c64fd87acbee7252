#!/usr/bin/env bash
# Resident memory and /metrics latency of the release binary with N real targets.
#
# Starts nginx (Debian's) on 127.0.0.1 with a 3-certificate ECDSA P-256 chain
# (root -> intermediate -> leaf, all three presented), points certwatch at it N times
# (N = 1000 and 10000), waits until every target has been probed, then records
# VmRSS / VmHWM, times scrapes of /metrics, stops certwatch with SIGTERM and checks it
# exits 0. Prints one summary table. Traffic goes to 127.0.0.1 only; everything the
# script starts is stopped at exit.
#
# Environment:
#   SMOKE=1          N=50 only and 5 scrapes (for CI)
#   COUNTS="1000 10000"  the target counts to run (default as shown)
#   SCRAPES=50       timed scrapes per run
#   FILL_TIMEOUT=300 seconds to wait for every target to be probed
#   CERTWATCH_BIN=…  use this binary instead of building target/release/certwatch
#   KEEP_TMP=1       keep the temporary directory (configs, logs) for inspection
#   PERF_RECORD=DIR  perf record -g certwatch during the timed scrapes into DIR/perf-N.data
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ "${SMOKE:-0}" == 1 ]]; then
    COUNTS=${COUNTS:-50}
    SCRAPES=${SCRAPES:-5}
else
    COUNTS=${COUNTS:-"1000 10000"}
    SCRAPES=${SCRAPES:-50}
fi
FILL_TIMEOUT=${FILL_TIMEOUT:-300}
STOP_TIMEOUT=10

for tool in nginx openssl curl; do
    if ! command -v "$tool" >/dev/null && [[ ! -x /usr/sbin/$tool ]]; then
        echo "rss.sh: $tool is required (apt-get install nginx-light openssl curl)" >&2
        exit 2
    fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/certwatch-rss.XXXXXX")
NGINX_PID=""
CW_PID=""

cleanup() {
    local status=$?
    if [[ -n "$CW_PID" ]] && kill -0 "$CW_PID" 2>/dev/null; then
        kill -KILL "$CW_PID" 2>/dev/null || true
        wait "$CW_PID" 2>/dev/null || true
    fi
    if [[ -n "$NGINX_PID" ]] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then
        echo "rss.sh: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "rss.sh: $*" >&2; }

# A TCP port on 127.0.0.1 that no socket uses, below the ephemeral range (so that no
# client connection can take it meanwhile).
free_port() {
    local port low
    low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    for _ in $(seq 200); do
        port=$((10000 + RANDOM % (low - 10000)))
        if command -v ss >/dev/null; then
            [[ -z "$(ss -Htan "( sport = :$port )" 2>/dev/null)" ]] && { echo "$port"; return; }
        elif ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    echo "rss.sh: no free port found" >&2
    return 1
}

status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
kb_to_mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# Nearest-rank percentile $2 (0-100) of the numbers on stdin.
percentile() { sort -g | awk -v p="$1" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; printf "%.2f\n", v[i] }'; }

# --- the binary -------------------------------------------------------------------
if [[ -n "${CERTWATCH_BIN:-}" ]]; then
    BIN=$CERTWATCH_BIN
else
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet)
    BIN=$ROOT/target/release/certwatch
fi
[[ -x "$BIN" ]] || { log "no binary at $BIN"; exit 2; }

# --- certificates: root -> intermediate -> leaf, ECDSA P-256 -----------------------
cd "$TMP"
ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ec_key root.key
ec_key inter.key
ec_key leaf.key
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
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
openssl req -x509 -new -key root.key -sha256 -days 3650 -subj "/O=certwatch bench/CN=certwatch bench root CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out root.pem 2>/dev/null
openssl req -new -key inter.key -subj "/O=certwatch bench/CN=certwatch bench intermediate CA" -out inter.csr 2>/dev/null
openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -days 1825 -sha256 \
    -extfile ext.cnf -extensions ca -out inter.pem 2>/dev/null
openssl req -new -key leaf.key -subj "/O=certwatch bench/CN=localhost" -out leaf.csr 2>/dev/null
openssl x509 -req -in leaf.csr -CA inter.pem -CAkey inter.key -CAcreateserial -days 90 -sha256 \
    -extfile ext.cnf -extensions leaf -out leaf.pem 2>/dev/null
cat leaf.pem inter.pem root.pem >chain.pem
openssl verify -CAfile root.pem -untrusted inter.pem leaf.pem >/dev/null

# --- nginx --------------------------------------------------------------------------
TLS_PORT=$(free_port)
mkdir -p nginx/logs nginx/tmp
cat >nginx/nginx.conf <<EOF
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp/body;
    proxy_temp_path $TMP/nginx/tmp/proxy;
    fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
    uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
    scgi_temp_path $TMP/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$TLS_PORT ssl;
        server_name localhost;
        ssl_certificate $TMP/chain.pem;
        ssl_certificate_key $TMP/leaf.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        location / { return 200 "ok\n"; }
    }
}
EOF
"$NGINX" -e "$TMP/nginx/logs/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$TLS_PORT") 2>/dev/null && break
    kill -0 "$NGINX_PID" 2>/dev/null || { log "nginx exited:"; cat nginx/logs/error.log >&2; exit 1; }
    sleep 0.1
done
presented=$(openssl s_client -connect "127.0.0.1:$TLS_PORT" -servername localhost -showcerts </dev/null 2>/dev/null |
    grep -c 'BEGIN CERTIFICATE' || true)
log "nginx (pid $NGINX_PID) on 127.0.0.1:$TLS_PORT presents $presented certificates"
[[ "$presented" == 3 ]] || { log "expected a 3-certificate chain"; exit 1; }

# --- one run per target count ---------------------------------------------------------
ROWS=()
run() {
    local n=$1 http_port conf started filled rss_fill hwm_fill rss_end hwm_end
    http_port=$(free_port)
    conf=$TMP/certwatch-$n.yml
    {
        echo "listen: 127.0.0.1:$http_port"
        echo "concurrency: 64"
        echo "defaults: {interval: 5m, timeout: 10s, trust: none, tls: {ca_file: $TMP/root.pem}}"
        echo "targets:"
        for ((i = 0; i < n; i++)); do
            printf '  - {address: "127.0.0.1:%s", name: "t-%05d", server_name: localhost}\n' "$TLS_PORT" "$i"
        done
    } >"$conf"

    local metrics=http://127.0.0.1:$http_port/metrics
    started=$(date +%s.%N)
    "$BIN" --config "$conf" 2>"$TMP/certwatch-$n.log" &
    CW_PID=$!
    # Wait for every target's first probe (bounded). First until certwatch's CPU use
    # drops to the steady rate of re-probes spread over the interval (under a quarter
    # of a core for 2 s), to read its memory before any /metrics scrape has grown it;
    # then poll /metrics until every target shows up.
    local deadline=$((SECONDS + FILL_TIMEOUT)) cpu last_cpu quiet=0 rss_quiet="" probed=0 hz
    hz=$(getconf CLK_TCK)
    last_cpu=$(awk '{ print $14 + $15 }' "/proc/$CW_PID/stat")
    while ((SECONDS < deadline && quiet < 2)); do
        sleep 1
        kill -0 "$CW_PID" 2>/dev/null || { log "certwatch exited early:"; cat "$TMP/certwatch-$n.log" >&2; exit 1; }
        cpu=$(awk '{ print $14 + $15 }' "/proc/$CW_PID/stat")
        if ((cpu - last_cpu < hz / 4)); then quiet=$((quiet + 1)); else quiet=0; fi
        last_cpu=$cpu
    done
    local rss_before
    rss_before=$(status_kb "$CW_PID" VmRSS)
    local first=1
    while ((SECONDS < deadline)); do
        kill -0 "$CW_PID" 2>/dev/null || { log "certwatch exited early:"; cat "$TMP/certwatch-$n.log" >&2; exit 1; }
        probed=$(curl -s --max-time 10 "$metrics" | grep -c '^certwatch_last_probe_timestamp_seconds' || true)
        [[ "$probed" == "$n" ]] && break
        first=0
        sleep 1
    done
    # Only a reading taken once every target had been probed counts.
    ((first)) && rss_quiet=$(kb_to_mb "$rss_before") || rss_quiet="n/a"
    filled=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    if [[ "$probed" != "$n" ]]; then
        log "N=$n: only $probed of $n targets probed after ${FILL_TIMEOUT}s"
        exit 1
    fi
    local failures
    failures=$(curl -s "$metrics" | grep -c '^certwatch_probe_success{.*} 0$' || true)
    rss_fill=$(status_kb "$CW_PID" VmRSS)
    hwm_fill=$(status_kb "$CW_PID" VmHWM)
    log "N=$n: all probed after ${filled}s ($failures unsuccessful); VmRSS $(kb_to_mb "$rss_fill") MB"

    # Timed scrapes.
    local times=$TMP/times-$n size
    : >"$times"
    local perf_pid="" cpu_before cpu_after cpu_per_scrape
    if [[ -n "${PERF_RECORD:-}" ]]; then
        perf record -q -g -p "$CW_PID" -o "$PERF_RECORD/perf-$n.data" 2>/dev/null &
        perf_pid=$!
        sleep 1
    fi
    cpu_before=$(awk '{ print $14 + $15 }' "/proc/$CW_PID/stat")
    for ((i = 0; i < SCRAPES; i++)); do
        curl -s --max-time 30 -o /dev/null -w '%{time_total} %{size_download}\n' "$metrics" >>"$times"
    done
    # The same with Accept-Encoding: gzip (compressed as it is rendered), as
    # Prometheus asks; curl does not decompress, so the time is certwatch's.
    local gz_times=$TMP/gz-times-$n
    : >"$gz_times"
    for ((i = 0; i < SCRAPES; i++)); do
        curl -s --max-time 30 -H 'Accept-Encoding: gzip' -o /dev/null \
            -w '%{time_total} %{size_download}\n' "$metrics" >>"$gz_times"
    done
    cpu_after=$(awk '{ print $14 + $15 }' "/proc/$CW_PID/stat")
    # certwatch's CPU time per scrape, plain and gzip alike (its background re-probes
    # included).
    cpu_per_scrape=$(awk -v a="$cpu_before" -v b="$cpu_after" -v hz="$hz" -v n="$((2 * SCRAPES))" \
        'BEGIN { printf "%.1f", (b - a) * 1000 / hz / n }')
    if [[ -n "$perf_pid" ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
    fi
    local p50 p99
    p50=$(awk '{ print $1 * 1000 }' "$times" | percentile 50)
    p99=$(awk '{ print $1 * 1000 }' "$times" | percentile 99)
    size=$(awk 'END { printf "%.2f", $2 / 1048576 }' "$times")
    local gz_p50 gz_p99 gz_size
    gz_p50=$(awk '{ print $1 * 1000 }' "$gz_times" | percentile 50)
    gz_p99=$(awk '{ print $1 * 1000 }' "$gz_times" | percentile 99)
    gz_size=$(awk 'END { printf "%.2f", $2 / 1048576 }' "$gz_times")
    rss_end=$(status_kb "$CW_PID" VmRSS)
    hwm_end=$(status_kb "$CW_PID" VmHWM)

    # Graceful stop.
    local stop_start code stopped
    stop_start=$(date +%s.%N)
    kill -TERM "$CW_PID"
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        kill -0 "$CW_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$CW_PID" 2>/dev/null; then
        code="hung"
        kill -KILL "$CW_PID" 2>/dev/null || true
        wait "$CW_PID" 2>/dev/null || true
    else
        code=0
        wait "$CW_PID" || code=$?
    fi
    stopped=$(awk -v a="$stop_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    CW_PID=""
    log "N=$n: scrapes p50 ${p50} ms p99 ${p99} ms, body ${size} MB; gzip p50 ${gz_p50} ms p99 ${gz_p99} ms, ${gz_size} MB; SIGTERM -> exit $code in ${stopped}s"

    ROWS+=("$(printf '%-7s %8s %8s %10s %10s %10s %10s %10s %9s %9s %9s %8s %6s %7s %9s %9s %8s' \
        "$n" "${filled}s" "$failures" "$rss_quiet" "$(kb_to_mb "$rss_fill")" "$(kb_to_mb "$hwm_fill")" \
        "$(kb_to_mb "$rss_end")" "$(kb_to_mb "$hwm_end")" "$p50" "$p99" "$cpu_per_scrape" "$size" "$code" "${stopped}s" \
        "$gz_p50" "$gz_p99" "$gz_size")")
    EXIT_CODES+=("$code")
}

EXIT_CODES=()
for n in $COUNTS; do
    run "$n"
done

echo
echo "certwatch RSS and /metrics latency ($(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo);" \
    "$SCRAPES scrapes per run; load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-7s %8s %8s %10s %10s %10s %10s %10s %9s %9s %9s %8s %6s %7s %9s %9s %8s\n' \
    targets filled failed "RSS0 MB" "RSS MB" "HWM MB" "RSS' MB" "HWM' MB" "p50 ms" "p99 ms" "cpu ms" "body MB" exit stop \
    "gz p50" "gz p99" "gz MB"
for row in "${ROWS[@]}"; do echo "$row"; done
echo "filled: time until every target was probed; failed: probe_success 0 then;"
echo "RSS0: VmRSS once filled, before any /metrics scrape; RSS/HWM: VmRSS/VmHWM after the first scrape(s);"
echo "RSS'/HWM': after the timed scrapes;"
echo "p50/p99: curl time_total of GET /metrics; cpu: certwatch CPU time per scrape (utime+stime);"
echo "gz p50/p99, gz MB: the same with Accept-Encoding: gzip (rendered and compressed as it streams);"
echo "exit/stop: exit code after SIGTERM and how long it took."

for code in "${EXIT_CODES[@]}"; do
    [[ "$code" == 0 ]] || { log "certwatch did not exit 0 after SIGTERM"; exit 1; }
done
