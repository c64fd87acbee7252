#!/usr/bin/env bash
# Proves that certwatch's container image works: run by deploy/container/build.sh.
#
#   deploy/container/verify.sh [IMAGE]        (default localhost/certwatch:VERSION)
#
# 1. The image's configuration: user 65532:65532, the entrypoint.
# 2. Its root filesystem (podman create + podman export) holds exactly the files of the
#    Containerfile.
# 3. In a network namespace of its own (unshare --net: nothing leaves the machine, no
#    port is shared with anyone), with a TLS server (openssl s_server) and a DNS server
#    (loopback-dns.py) on its loopback: the image runs as Kubernetes runs it (read-only
#    root filesystem, no capabilities, no privilege escalation, its own non-root user,
#    the configuration mounted read-only) and must answer `--version`, `/-/healthy` and
#    `/-/ready` with 200, and probe two targets, one resolved through /etc/hosts and one
#    through DNS: getaddrinfo of the statically linked glibc, in an image without any
#    shared library.
#
# How it runs the image: `podman run` with runc. podman's default runtime here, crun,
# cannot start a container in this sandbox (it cannot raise RLIMIT_NOFILE/RLIMIT_NPROC
# to podman's defaults, and refuses the hybrid cgroup layout, whose cgroup v2 hierarchy
# holds the hugetlb controller); runc runs it once the limits are set within the
# caller's own (--ulimit below). Where podman cannot run a container at all, the same
# checks run on the exported root filesystem with chroot (--userspec 65532:65532, the
# root bind-mounted read-only), and the output says so.
#
# Needs podman, runc, openssl, curl, python3, unshare and ip (Debian: podman, runc,
# openssl, curl, python3, util-linux, iproute2).
set -euo pipefail
self=$(realpath "${BASH_SOURCE[0]}")
cd "$(dirname "$self")/../.."
here=deploy/container
version=$(awk -F'"' '/^version = /{print $2; exit}' Cargo.toml)
image=${1:-localhost/certwatch:$version}

# Re-run inside a network namespace of our own (and a mount namespace, for the
# read-only bind mount of the chroot fallback).
if [[ ${CERTWATCH_VERIFY_NETNS:-} != 1 ]]; then
    exec env CERTWATCH_VERIFY_NETNS=1 unshare --net --mount -- bash "$self" "$image"
fi
ip link set lo up

echo "--- verify $image"
failed=0
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then echo "    ok: $what"; else echo "    FAILED: $what"; failed=1; fi
}

user=$(podman image inspect --format '{{.Config.User}}' "$image")
entry=$(podman image inspect --format '{{json .Config.Entrypoint}}' "$image")
check "image user is $user (want 65532:65532)" test "$user" = 65532:65532
check "image entrypoint is $entry" test "$entry" = '["/usr/local/bin/certwatch"]'

work=$(mktemp -d)
pids=()
cid=
cleanup() {
    [[ -n $cid ]] && podman rm -f "$cid" >/dev/null 2>&1
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    mountpoint -q "$work/ro" && umount "$work/ro"
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/rootfs" "$work/config" "$work/ro"
export_id=$(podman create "$image")
podman export "$export_id" | tar -x -C "$work/rootfs"
podman rm "$export_id" >/dev/null
files=$(cd "$work/rootfs" && find . -type f | sort | tr '\n' ' ')
want="./etc/group ./etc/nsswitch.conf ./etc/passwd ./etc/ssl/certs/ca-certificates.crt ./usr/local/bin/certwatch "
check "root filesystem holds exactly: $files" test "$files" = "$want"

# The peers: a TLS server presenting a self-signed certificate for both names, and the
# DNS server, which knows only dns.certwatch.test.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=certwatch-image-test -keyout "$work/key.pem" -out "$work/cert.pem" \
    -addext "subjectAltName=DNS:hosts.certwatch.test,DNS:dns.certwatch.test" 2>/dev/null
openssl s_server -quiet -accept 127.0.0.1:8443 -cert "$work/cert.pem" -key "$work/key.pem" \
    </dev/null >/dev/null 2>&1 &
pids+=($!)
python3 "$here/loopback-dns.py" 127.0.0.1 dns.certwatch.test=127.0.0.1 >"$work/dns.log" 2>&1 &
pids+=($!)
# Both must be up before certwatch's first probe: 10 s at most.
for _ in $(seq 50); do
    grep -q '^ready' "$work/dns.log" && (exec 3<>/dev/tcp/127.0.0.1/8443) 2>/dev/null && break
    sleep 0.2
done
check "the TLS and DNS servers are up" grep -q '^ready' "$work/dns.log"
cat >"$work/config/certwatch.yml" <<'EOF'
defaults: {interval: 1h, timeout: 5s, trust: none}
targets:
  - address: "hosts.certwatch.test:8443"   # resolved through /etc/hosts
  - address: "dns.certwatch.test:8443"     # resolved through DNS (127.0.0.1:53 here)
EOF
chmod -R a+rX "$work"

run_podman=(podman --runtime runc run --network=host --dns=127.0.0.1
    --add-host=hosts.certwatch.test:127.0.0.1
    --ulimit "nofile=4096:4096" --ulimit "nproc=4096:4096"
    --read-only --cap-drop=ALL --security-opt=no-new-privileges
    -v "$work/config:/etc/certwatch:ro")
# podman run, unless podman cannot start a container at all here (the runtime's own
# error: rlimits, cgroups); an image whose binary does not start fails, it is not
# retried with chroot. CERTWATCH_VERIFY_WITH=chroot skips podman run (to test that path).
how=podman
if [[ ${CERTWATCH_VERIFY_WITH:-podman} == chroot ]]; then
    how=chroot
    out="skipped: CERTWATCH_VERIFY_WITH=chroot"
elif ! out=$("${run_podman[@]}" --rm "$image" --version 2>&1); then
    if grep -qiE 'rlimit|cgroup|OCI permission denied|operation not permitted' <<<"$out"; then
        how=chroot
    else
        how=failed
    fi
fi
case $how in
    podman)
        how="podman run (runc)"
        version_out=$out
        cid=$("${run_podman[@]}" -d "$image" --config /etc/certwatch/certwatch.yml \
            --listen 127.0.0.1:9798)
        ;;
    chroot)
        echo "    podman cannot run containers here ($out): checking the exported root with chroot"
        how="chroot of the exported root filesystem"
        printf '127.0.0.1 localhost hosts.certwatch.test\n' >"$work/rootfs/etc/hosts"
        printf 'nameserver 127.0.0.1\n' >"$work/rootfs/etc/resolv.conf"
        mkdir -p "$work/rootfs/etc/certwatch"
        cp "$work/config/certwatch.yml" "$work/rootfs/etc/certwatch/"
        mount --bind "$work/rootfs" "$work/ro"
        mount -o remount,bind,ro "$work/ro"
        chroot_run=(chroot --userspec=65532:65532 "$work/ro" /usr/local/bin/certwatch)
        version_out=$("${chroot_run[@]}" --version 2>&1) || true
        "${chroot_run[@]}" --config /etc/certwatch/certwatch.yml --listen 127.0.0.1:9798 \
            >"$work/certwatch.log" 2>&1 &
        pids+=($!)
        ;;
    failed)
        echo "    FAILED: the image does not start: podman run $image --version: $out"
        echo "    the image FAILED verification"
        exit 1
        ;;
esac
echo "    running the image with: $how"
check "--version says: $version_out" grep -q "^certwatch $version" <<<"$version_out"

status() { curl -sS -o /dev/null -w '%{http_code}' --retry 30 --retry-connrefused \
    --retry-delay 1 --max-time 5 "http://127.0.0.1:9798$1"; }
check "/-/healthy answers $(status /-/healthy)" test "$(status /-/healthy)" = 200
check "/-/ready answers $(status /-/ready)" test "$(status /-/ready)" = 200

# The first probes run at start-up; wait for both results, 20 s at most.
probed() {
    local m
    for _ in $(seq 100); do
        m=$(curl -sS --max-time 5 http://127.0.0.1:9798/metrics)
        if grep -q '^certwatch_handshake_success{target="hosts.certwatch.test:8443",ip="127.0.0.1"} 1' <<<"$m" &&
            grep -q '^certwatch_handshake_success{target="dns.certwatch.test:8443",ip="127.0.0.1"} 1' <<<"$m"; then
            grep '^certwatch_handshake_success' <<<"$m" | sed 's/^/      /'
            return 0
        fi
        sleep 0.2
    done
    echo "$m" | grep -E '^certwatch_(handshake_success|probe_failure_info)' | sed 's/^/      /'
    return 1
}
check "probes through /etc/hosts and DNS complete (static getaddrinfo: files and dns)" probed
check "the DNS server was asked for dns.certwatch.test" grep -q "query dns.certwatch.test type 1" "$work/dns.log"

if ((failed)); then
    [[ -n $cid ]] && podman logs "$cid" 2>&1 | tail -20
    [[ -f $work/certwatch.log ]] && tail -20 "$work/certwatch.log"
    echo "    the image FAILED verification"
    exit 1
fi
echo "    the image works: $how"
