#!/usr/bin/env bash
# Supply-chain scan: cargo-deny checks advisories (RustSec), licenses, banned and
# duplicate crates, and sources against deny.toml, offline.
#
#   bash .ci/deny.sh             (from anywhere; CI runs it from .ci/run)
#
# - cargo-deny (pinned below) is installed once per machine with `cargo install --locked`
#   into $CERTWATCH_TOOLS_DIR (default ~/.cache/certwatch/tools, outside the clone, so
#   CI's fresh clones reuse it); a run that finds it there skips the install.
# - The advisory database is cloned from ../shared/advisory-db.bundle (no machine here
#   reaches the database's home) into target/advisory-dbs, where deny.toml points.
# - A self-test then adds a made-up advisory against a crate of the graph to a copy of the
#   database and requires cargo-deny to fail naming its id: the scan cannot pass
#   because it looked at nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DENY_VERSION=0.20.2
# The directory cargo-deny (with its pinned version) derives from its default database
# URL, https://github.com/rustsec/advisory-db; deny.toml's db-path is its parent.
DB_DIR_NAME=advisory-db-3157b0e258782691
BUNDLE=${CERTWATCH_ADVISORY_BUNDLE:-../shared/advisory-db.bundle}
TOOLS=${CERTWATCH_TOOLS_DIR:-${HOME:-$PWD/target}/.cache/certwatch/tools}
DENY=$TOOLS/bin/cargo-deny
[[ -f $BUNDLE ]] || { echo "no advisory database at $BUNDLE (set CERTWATCH_ADVISORY_BUNDLE)"; exit 1; }

if [[ "$("$DENY" --version 2>/dev/null)" != "cargo-deny $DENY_VERSION" ]]; then
    echo "--- installing cargo-deny $DENY_VERSION into $TOOLS (once per machine)"
    start=$SECONDS
    cargo install --locked --quiet --root "$TOOLS" "cargo-deny@$DENY_VERSION"
    echo "    installed in $((SECONDS - start)) s"
else
    echo "--- cargo-deny $DENY_VERSION: $DENY (installed earlier; not rebuilt)"
fi

db=target/advisory-dbs/$DB_DIR_NAME
rm -rf "$db"
mkdir -p target/advisory-dbs
git clone -q -b snapshot "$BUNDLE" "$db"
echo "    advisory database: $(git -C "$db" log -1 --format='%s')"
echo "    $(find "$db/crates" -name 'RUSTSEC-*.md' | wc -l) advisories"

# The crates' manifests and license files, which the offline scan reads (CI runs this
# before anything else has downloaded them).
cargo fetch --locked --quiet

echo "--- cargo deny check (advisories, bans, licenses, sources)"
"$DENY" --frozen --color never check --show-stats

# --- self-test: a new advisory against a crate we use fails the scan with its id ------
echo "--- cargo deny self-test: a made-up advisory against a dependency must fail the scan"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fake_root=$tmp/dbs
git clone -q -b snapshot "$BUNDLE" "$fake_root/$DB_DIR_NAME"
# The crate and the version in the graph, from Cargo.lock.
crate=hyper-util
version=$(awk -v c="$crate" '$0 == "name = \"" c "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[[ -n $version ]] || { echo "    $crate is not in Cargo.lock: pick another crate"; exit 1; }
fake_id=RUSTSEC-2099-0001
mkdir -p "$fake_root/$DB_DIR_NAME/crates/$crate"
cat >"$fake_root/$DB_DIR_NAME/crates/$crate/$fake_id.md" <<EOF
\`\`\`toml
[advisory]
id = "$fake_id"
package = "$crate"
date = "2099-01-01"
url = "https://example.invalid/$fake_id"
categories = ["denial-of-service"]
keywords = ["certwatch-self-test"]

[versions]
patched = [">= 99.0.0"]
\`\`\`

# Made-up advisory: certwatch's CI checks that a new advisory fails the scan

Not a real advisory. .ci/deny.sh adds it to a copy of the database.
EOF
sed "s#^db-path = .*#db-path = \"$fake_root\"#" deny.toml >"$tmp/deny.toml"
if "$DENY" --frozen --color never --config "$tmp/deny.toml" check advisories >"$tmp/out" 2>&1; then
    cat "$tmp/out"
    echo "    FAILED: cargo deny passed with $fake_id against $crate $version"
    exit 1
fi
if ! grep -q "$fake_id" "$tmp/out"; then
    cat "$tmp/out"
    echo "    FAILED: cargo deny failed without naming $fake_id"
    exit 1
fi
grep -E "^error\[vulnerability\]|$fake_id|advisories (ok|FAILED)" "$tmp/out" | sed 's/^/    | /'
echo "    ok: $fake_id against $crate $version fails the scan and is named"
