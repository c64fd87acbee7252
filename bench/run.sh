#!/usr/bin/env bash
# CPU per probe of certwatch against the floor (a bare rustls client loop) and against
# blackbox_exporter, plus certwatch's memory, /metrics latency and start-up time.
# See bench/README.md. Traffic goes to 127.0.0.1 only; everything started is stopped at exit.
#
# Environment:
#   SMOKE=1            a few dozen probes per side, 1 round, N=50 targets (CI; ~2 min)
#   ROUNDS=5           interleaved rounds (floor, certwatch scheduled, certwatch /probe, blackbox); medians reported
#   PROBES=2000        probes per side per round (floor handshakes, /probe requests)
#   SCHED_TARGETS=2000 targets for certwatch's scheduled-probe CPU and start-up time
#   CONCURRENCY=64     probes in flight (certwatch's default `concurrency`)
#   COUNTS="1000 10000" target counts for bench/rss.sh (RSS, /metrics latency, body size)
#   SCRAPES=50         timed /metrics scrapes per count (bench/rss.sh)
#   SKIP_RSS=1         do not run bench/rss.sh
#   RESULTS=FILE       where to write the JSON (default bench/results.json)
#   CERTWATCH_BIN=…    use this binary instead of building target/release/certwatch
#   KEEP_TMP=1         keep the temporary directory
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ "${SMOKE:-0}" == 1 ]]; then
    ROUNDS=${ROUNDS:-1}
    PROBES=${PROBES:-50}
    SCHED_TARGETS=${SCHED_TARGETS:-50}
    COUNTS=${COUNTS:-50}
    SCRAPES=${SCRAPES:-5}
else
    ROUNDS=${ROUNDS:-5}
    PROBES=${PROBES:-2000}
    SCHED_TARGETS=${SCHED_TARGETS:-2000}
    COUNTS=${COUNTS:-"1000 10000"}
    SCRAPES=${SCRAPES:-50}
fi
CONCURRENCY=${CONCURRENCY:-64}
RESULTS=${RESULTS:-$ROOT/bench/results.json}
BLACKBOX=/usr/bin/prometheus-blackbox-exporter

log() { echo "run.sh: $*" >&2; }

# --- what it needs --------------------------------------------------------------------
missing=()
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || missing+=(nginx-light)
[[ -x $BLACKBOX ]] || missing+=(prometheus-blackbox-exporter)
for tool in openssl curl python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    SUDO=""
    [[ $(id -u) == 0 ]] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v cargo >/dev/null || { log "cargo is required (rustup, stable)"; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/certwatch-run.XXXXXX")
PIDS=()
cleanup() {
    local status=$? pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    local port low
    low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    for _ in $(seq 200); do
        port=$((10000 + RANDOM % (low - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
    done
    log "no free port found"
    return 1
}
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || { log "$3 exited"; return 1; }
        sleep 0.1
    done
    log "$3 did not listen on $1"
    return 1
}
# utime+stime of a process in microseconds.
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.0f\n", ($12 + $13) * 1e6 / hz }' "/proc/$1/stat"; }
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
now() { date +%s.%N; }
# One measurement: round, chain, side, metric, value.
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$TMP/results.tsv"; }

# --- binaries ---------------------------------------------------------------------------
if [[ -n "${CERTWATCH_BIN:-}" ]]; then
    BIN=$CERTWATCH_BIN
else
    log "cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet)
    BIN=$ROOT/target/release/certwatch
fi
# BENCH_BUILD=debug builds the floor with the test profile: only for a quick smoke run
# (CI), as debug figures mean nothing.
floor_build=(bench --bench floor)
[[ "${BENCH_BUILD:-release}" == debug ]] && floor_build=(test --bench floor)
log "cargo ${floor_build[*]} --no-run"
FLOOR=$(cd "$ROOT" && cargo "${floor_build[@]}" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "floor" and m.get("executable"):
        print(m["executable"])')
[[ -x "$BIN" && -x "$FLOOR" ]] || { log "missing binaries ($BIN, $FLOOR)"; exit 2; }
DRIVE="python3 $ROOT/bench/floor/drive.py"

# --- chains: root -> intermediate -> leaf, ECDSA P-256 and RSA-2048 ----------------------
cd "$TMP"
cat >ext.cnf <<'EOF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
make_chain() {
    local alg=$1 d=$TMP/$1 k
    mkdir -p "$d"
    for k in root inter leaf; do
        if [[ $alg == ecdsa ]]; then
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/$k.key" 2>/dev/null
        else
            openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/$k.key" 2>/dev/null
        fi
    done
    openssl req -x509 -new -key "$d/root.key" -sha256 -days 3650 -subj "/O=certwatch bench/CN=bench root $alg" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
        -out "$d/root.pem" 2>/dev/null
    openssl req -new -key "$d/inter.key" -subj "/O=certwatch bench/CN=bench intermediate $alg" -out "$d/inter.csr" 2>/dev/null
    openssl x509 -req -in "$d/inter.csr" -CA "$d/root.pem" -CAkey "$d/root.key" -CAcreateserial -days 1825 -sha256 \
        -extfile ext.cnf -extensions ca -out "$d/inter.pem" 2>/dev/null
    openssl req -new -key "$d/leaf.key" -subj "/O=certwatch bench/CN=localhost" -out "$d/leaf.csr" 2>/dev/null
    openssl x509 -req -in "$d/leaf.csr" -CA "$d/inter.pem" -CAkey "$d/inter.key" -CAcreateserial -days 90 -sha256 \
        -extfile ext.cnf -extensions leaf -out "$d/leaf.pem" 2>/dev/null
    cat "$d/leaf.pem" "$d/inter.pem" "$d/root.pem" >"$d/chain.pem"
    openssl verify -CAfile "$d/root.pem" -untrusted "$d/inter.pem" "$d/leaf.pem" >/dev/null
}
CHAINS="ecdsa rsa"
for alg in $CHAINS; do make_chain "$alg"; done

# --- nginx: one worker, one port per chain --------------------------------------------------
declare -A PORT
mkdir -p nginx/logs nginx/tmp
{
    echo "worker_processes 1; pid $TMP/nginx/nginx.pid; error_log $TMP/nginx/logs/error.log warn;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; client_body_temp_path $TMP/nginx/tmp/body; proxy_temp_path $TMP/nginx/tmp/proxy;"
    echo "  fastcgi_temp_path $TMP/nginx/tmp/fcgi; uwsgi_temp_path $TMP/nginx/tmp/uwsgi; scgi_temp_path $TMP/nginx/tmp/scgi;"
    for alg in $CHAINS; do
        PORT[$alg]=$(free_port)
        echo "  server { listen 127.0.0.1:${PORT[$alg]} ssl; server_name localhost;"
        echo "    ssl_certificate $TMP/$alg/chain.pem; ssl_certificate_key $TMP/$alg/leaf.key;"
        echo "    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache off; ssl_session_tickets off;"
        echo "    location / { return 200 \"ok\"; } }"
    done
    echo "}"
} >nginx/nginx.conf
"$NGINX" -e "$TMP/nginx/logs/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
for alg in $CHAINS; do wait_port "${PORT[$alg]}" "${PIDS[-1]}" nginx; done
log "nginx on 127.0.0.1: ecdsa ${PORT[ecdsa]}, rsa ${PORT[rsa]}"

# --- long-running /probe servers: certwatch and blackbox_exporter ---------------------------
CW_PORT=$(free_port)
cat >certwatch-probe.yml <<EOF
listen: 127.0.0.1:$CW_PORT
concurrency: $CONCURRENCY
probe: {max_in_flight: $CONCURRENCY}
modules:
  ecdsa: {trust: none, tls: {ca_file: $TMP/ecdsa/root.pem}}
  rsa: {trust: none, tls: {ca_file: $TMP/rsa/root.pem}}
targets: []
EOF
"$BIN" --config certwatch-probe.yml --log-level warn 2>certwatch-probe.log &
CW_PID=$!
PIDS+=("$CW_PID")
wait_port "$CW_PORT" "$CW_PID" certwatch

BB_PORT=$(free_port)
{
    echo "modules:"
    for alg in $CHAINS; do
        echo "  $alg: {prober: tcp, timeout: 10s, tcp: {tls: true, tls_config: {ca_file: $TMP/$alg/root.pem, server_name: localhost}}}"
    done
} >blackbox.yml
"$BLACKBOX" --config.file=blackbox.yml --web.listen-address="127.0.0.1:$BB_PORT" --log.level=warn 2>blackbox.log &
BB_PID=$!
PIDS+=("$BB_PID")
wait_port "$BB_PORT" "$BB_PID" blackbox_exporter

# Drives URL with PROBES requests at CONCURRENCY and records the server's CPU per probe.
probe_load() {
    local round=$1 alg=$2 side=$3 pid=$4 url=$5 c0 c1 out
    c0=$(cpu_us "$pid")
    out=$($DRIVE "$url" "$PROBES" "$CONCURRENCY")
    c1=$(cpu_us "$pid")
    python3 - "$out" "$c0" "$c1" "$PROBES" >"$TMP/row" <<'EOF'
import json, sys
o = json.loads(sys.argv[1]); c0, c1, n = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
print(f"{(c1 - c0) / n:.1f} {n / o['wall_s']:.1f} {o['failed']}")
EOF
    read -r cpu rate failed <"$TMP/row"
    record "$round" "$alg" "$side" cpu_us_per_probe "$cpu"
    record "$round" "$alg" "$side" probes_per_s "$rate"
    record "$round" "$alg" "$side" failed "$failed"
    record "$round" "$alg" "$side" rss_mb "$(awk -v k="$(status_kb "$pid" VmRSS)" 'BEGIN { printf "%.1f", k / 1024 }')"
    log "round $round $alg $side: ${cpu} us/probe, ${rate}/s, $failed failed"
}

floor_run() {
    local round=$1 alg=$2 out
    out=$(FLOOR_ADDR=127.0.0.1:${PORT[$alg]} FLOOR_CA=$TMP/$alg/root.pem FLOOR_N=$PROBES FLOOR_CONC=$CONCURRENCY "$FLOOR")
    read -r cpu rate failed < <(python3 -c 'import json,sys; o=json.loads(sys.argv[1]); print(o["cpu_us_per_handshake"], o["handshakes_per_s"], o["failed"])' "$out")
    record "$round" "$alg" floor cpu_us_per_probe "$cpu"
    record "$round" "$alg" floor probes_per_s "$rate"
    record "$round" "$alg" floor failed "$failed"
    log "round $round $alg floor: ${cpu} us/handshake, ${rate}/s, $failed failed"
}

# certwatch with SCHED_TARGETS configured targets: time to the first /metrics answer, then
# its CPU per scheduled probe (from that answer until every target has been probed).
sched_run() {
    local round=$1 alg=$2 port conf t0 t1 t2 c1=0 c2 pid probed=0 deadline
    port=$(free_port)
    conf=$TMP/certwatch-sched-$alg.yml
    {
        echo "listen: 127.0.0.1:$port"
        echo "concurrency: $CONCURRENCY"
        echo "defaults: {interval: 1h, timeout: 10s, trust: none, tls: {ca_file: $TMP/$alg/root.pem}}"
        echo "targets:"
        for ((i = 0; i < SCHED_TARGETS; i++)); do
            printf '  - {address: "127.0.0.1:%s", name: "t-%05d", server_name: localhost}\n' "${PORT[$alg]}" "$i"
        done
    } >"$conf"
    t0=$(now)
    "$BIN" --config "$conf" --log-level warn 2>"$TMP/certwatch-sched.log" &
    pid=$!
    PIDS+=("$pid")
    until curl -sf -o /dev/null "http://127.0.0.1:$port/metrics"; do
        kill -0 "$pid" 2>/dev/null || { log "certwatch exited"; cat "$TMP/certwatch-sched.log" >&2; return 1; }
        sleep 0.005
    done
    t1=$(now)
    # CPU from process start: start-up (config, trust) is charged to the probes too.
    # The end of the first round is when certwatch's CPU time stops growing (0.5 s
    # without a tick): polling /metrics meanwhile would add rendering to the figure.
    local c t last_c=-1 last_t quiet=0
    last_t=$(now)
    deadline=$((SECONDS + 300))
    while ((SECONDS < deadline && quiet < 5)); do
        sleep 0.1
        kill -0 "$pid" 2>/dev/null || { log "certwatch exited"; return 1; }
        c=$(cpu_us "$pid")
        t=$(now)
        if [[ "$c" == "$last_c" ]]; then quiet=$((quiet + 1)); else quiet=0; last_c=$c; last_t=$t; fi
    done
    t2=$last_t
    c2=$last_c
    # Then check that every target was probed (and wait for stragglers, if any).
    while ((SECONDS < deadline)); do
        probed=$(curl -s "http://127.0.0.1:$port/metrics" | grep -c '^certwatch_last_probe_timestamp_seconds' || true)
        [[ "$probed" == "$SCHED_TARGETS" ]] && break
        log "certwatch scheduled: $probed of $SCHED_TARGETS probed once quiet; waiting"
        sleep 1
        t2=$(now)
        c2=$(cpu_us "$pid")
    done
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    # Start-up's cost is included: a slight overestimate per probe.
    record "$round" "$alg" certwatch_sched cpu_us_per_probe "$(awk -v a="$c1" -v b="$c2" -v n="$SCHED_TARGETS" 'BEGIN { printf "%.1f", (b - a) / n }')"
    record "$round" "$alg" certwatch_sched probes_per_s "$(awk -v a="$t1" -v b="$t2" -v n="$SCHED_TARGETS" 'BEGIN { printf "%.1f", n / (b - a) }')"
    record "$round" "$alg" certwatch_sched failed "$((SCHED_TARGETS - probed))"
    record "$round" "$alg" certwatch_sched startup_ms "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')"
    log "round $round $alg certwatch scheduled: $probed/$SCHED_TARGETS probed, $(awk -v b="$c2" -v n="$SCHED_TARGETS" 'BEGIN { printf "%.0f", b / n }') us/probe"
}

# Warm-up (not recorded): page in binaries, let the servers allocate.
for alg in $CHAINS; do
    $DRIVE "http://127.0.0.1:$CW_PORT/probe?target=127.0.0.1:${PORT[$alg]}&module=$alg&server_name=localhost" 20 4 >/dev/null
    $DRIVE "http://127.0.0.1:$BB_PORT/probe?target=127.0.0.1:${PORT[$alg]}&module=$alg" 20 4 >/dev/null
done

: >"$TMP/results.tsv"
for ((r = 1; r <= ROUNDS; r++)); do
    for alg in $CHAINS; do
        # The floor and certwatch's scheduled probes back to back: their ratio is the
        # headline, and neighbours in time share the machine's state.
        floor_run "$r" "$alg"
        sched_run "$r" "$alg"
        probe_load "$r" "$alg" certwatch "$CW_PID" \
            "http://127.0.0.1:$CW_PORT/probe?target=127.0.0.1:${PORT[$alg]}&module=$alg&server_name=localhost"
        probe_load "$r" "$alg" blackbox "$BB_PID" \
            "http://127.0.0.1:$BB_PORT/probe?target=127.0.0.1:${PORT[$alg]}&module=$alg"
    done
done
record all all certwatch hwm_mb "$(awk -v k="$(status_kb "$CW_PID" VmHWM)" 'BEGIN { printf "%.1f", k / 1024 }')"
record all all blackbox hwm_mb "$(awk -v k="$(status_kb "$BB_PID" VmHWM)" 'BEGIN { printf "%.1f", k / 1024 }')"

# --- RSS, /metrics latency and body size at scale: bench/rss.sh -------------------------------
: >"$TMP/rss.out"
if [[ "${SKIP_RSS:-0}" != 1 ]]; then
    log "bench/rss.sh COUNTS=\"$COUNTS\" SCRAPES=$SCRAPES"
    COUNTS=$COUNTS SCRAPES=$SCRAPES CERTWATCH_BIN=$BIN SMOKE=0 bash "$ROOT/bench/rss.sh" >"$TMP/rss.out" ||
        log "bench/rss.sh failed (its figures are left out)"
fi

python3 "$ROOT/bench/floor/report.py" "$TMP/results.tsv" "$TMP/rss.out" "$RESULTS" \
    "$ROUNDS" "$PROBES" "$CONCURRENCY" "$SCHED_TARGETS"
