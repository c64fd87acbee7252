#!/usr/bin/env bash
# Fuzzing smoke run: builds every cargo-fuzz target under fuzz/ and runs each for
# FUZZ_SECONDS (30 by default), starting from its corpus in fuzz/corpus/<target>, so
# the targets keep compiling and the corpus keeps passing. New inputs go to a scratch
# directory; the committed corpus is only read.
#
# libFuzzer needs the nightly-only -Zsanitizer flags; a stable rustc takes them with
# RUSTC_BOOTSTRAP=1. When the toolchain cannot build a fuzz target at all (no sanitizer
# support, no C++ compiler for libFuzzer, no cargo-fuzz to be had) this script says why
# and exits 0. A target that does not compile, or an input that crashes or hangs, exits
# non-zero, with the reproducer's path.
#
# Longer runs by hand: FUZZ_SECONDS=600 bash .ci/fuzz.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-30}
cargo_fuzz_version=0.13.2

skip() {
  echo "--- fuzz: skipped: $*"
  exit 0
}

command -v c++ >/dev/null 2>&1 || skip "no C++ compiler to build libFuzzer"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "--- fuzz: installing cargo-fuzz $cargo_fuzz_version"
  cargo install cargo-fuzz --locked --version "$cargo_fuzz_version" >/dev/null 2>&1 ||
    skip "cargo-fuzz could not be installed from crates.io"
fi

# cargo-fuzz passes nightly flags; stable accepts them only with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
host=$(rustc -vV | sed -n 's/^host: //p')
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
echo 'fn main() {}' >"$probe_dir/probe.rs"
if ! rustc -Zsanitizer=address -Cpasses=sancov-module --target "$host" \
  -o "$probe_dir/probe" "$probe_dir/probe.rs" >"$probe_dir/log" 2>&1; then
  skip "rustc cannot build with -Zsanitizer=address: $(head -n 3 "$probe_dir/log")"
fi

[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock

echo "--- fuzz: build"
(cd fuzz && cargo fuzz build -O --debug-assertions)

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi
for target in "${targets[@]}"; do
  echo "--- fuzz: $target for ${seconds}s"
  scratch="$probe_dir/corpus-$target"
  mkdir -p "$scratch" "fuzz/corpus/$target"
  dict=()
  [ -f "fuzz/dict/$target.dict" ] && dict=("-dict=dict/$target.dict")
  # -timeout: an input that takes 10 s is a hang; the STARTTLS target's deadline is
  # on a paused clock and costs no real time.
  log="$probe_dir/$target.log"
  status=0
  (cd fuzz && cargo fuzz run -O --debug-assertions "$target" "$scratch" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    "${dict[@]}") >"$log" 2>&1 || status=$?
  grep -aE '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec)' "$log" || true
  if [ "$status" -ne 0 ]; then
    echo "--- fuzz: $target failed (exit $status):"
    grep -aE -A 30 'panicked|ERROR: libFuzzer|SUMMARY' "$log" | head -n 60 || tail -n 40 "$log"
    ls "fuzz/artifacts/$target" 2>/dev/null || true
    echo "reproduce: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a $target artifacts/$target/<file>)"
    exit 1
  fi
done
echo "--- fuzz: ${#targets[@]} targets ran ${seconds}s each without a failure"
