#!/usr/bin/env bash
# Builds certwatch's container image offline with podman, then proves it works.
#
#   deploy/container/build.sh [--profile release|dev] [--tag IMAGE] [--no-verify]
#
#   --profile  cargo profile of the static binary: release (default: the image you
#              ship, and CI's) or dev (without debug info; no faster from nothing here)
#   --tag      the image name (default localhost/certwatch:VERSION)
#   --no-verify  skip deploy/container/verify.sh
#
# Steps: a statically linked certwatch (glibc, `-C target-feature=+crt-static`, in
# target/HOST-TRIPLE/PROFILE: the toolchain here has no musl target); a build context
# in target/container/context with the binary, deploy/container/{passwd,group,
# nsswitch.conf} and the build machine's CA bundle (Debian's ca-certificates); then
# `podman build --network=none` of deploy/container/Containerfile (FROM scratch: nothing
# is pulled or downloaded). Needs podman (Debian package podman).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

profile=release
tag=
verify=1
while (($#)); do
    case $1 in
        --profile) profile=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        --no-verify) verify=0; shift ;;
        *) sed -n '2,13p' "$0"; exit 2 ;;
    esac
done

version=$(awk -F'"' '/^version = /{print $2; exit}' Cargo.toml)
revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
tag=${tag:-localhost/certwatch:$version}
triple=$(rustc -vV | awk '/^host:/{print $2}')
case $triple in
    *-linux-gnu) ;;
    *) echo "the static build is set up for *-linux-gnu hosts, not $triple"; exit 1 ;;
esac
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
[[ -s $CA_BUNDLE ]] || { echo "no $CA_BUNDLE (Debian package ca-certificates)"; exit 1; }
command -v podman >/dev/null || { echo "podman not found (Debian package podman)"; exit 1; }

echo "--- static certwatch: profile $profile, $triple, glibc with +crt-static"
# --target makes this a separate build in target/$triple, and keeps the flag off build
# scripts and proc macros (a static proc macro cannot be loaded).
start=$SECONDS
flags_var=CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$triple")_RUSTFLAGS
# No debug info in dev builds: the image strips it anyway, and it is a large part of the
# compile time and of the 150 MB of a debug binary.
env "$flags_var=-C target-feature=+crt-static" CARGO_PROFILE_DEV_DEBUG=0 \
    cargo build --locked --quiet --profile "$profile" --target "$triple" --bin certwatch
out_dir=$profile
[[ $profile == dev ]] && out_dir=debug
bin=target/$triple/$out_dir/certwatch
echo "    built in $((SECONDS - start)) s: $bin"
if readelf -lW "$bin" | grep -q 'INTERP' || readelf -dW "$bin" | grep -q '(NEEDED)'; then
    echo "    FAILED: $bin is dynamically linked:"
    readelf -dW "$bin" | grep NEEDED
    exit 1
fi
echo "    statically linked: no program interpreter, no shared library needed"

context=target/container/context
rm -rf "$context"
mkdir -p "$context"
cp deploy/container/passwd deploy/container/group deploy/container/nsswitch.conf "$context/"
cp "$CA_BUNDLE" "$context/ca-certificates.crt"
# Debug info off (symbols stay, for backtraces).
objcopy --strip-debug "$bin" "$context/certwatch"
echo "    context $context: $(cd "$context" && ls | tr '\n' ' ')($(du -sh "$context" | cut -f1))"

echo "--- podman build $tag (FROM scratch, --network=none)"
previous=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
start=$SECONDS
podman build --quiet --network=none --pull=never \
    --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
    -f deploy/container/Containerfile -t "$tag" "$context" >/dev/null
echo "    built in $((SECONDS - start)) s: $tag, $(podman image inspect --format '{{.Size}}' "$tag" |
    awk '{printf "%.1f MB", $1 / 1e6}')"

# The image this tag named before, if this build replaced it (not another tag's).
if [[ -n $previous && $previous != "$(podman image inspect --format '{{.Id}}' "$tag")" ]]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
fi

if ((verify)); then
    bash deploy/container/verify.sh "$tag"
fi
