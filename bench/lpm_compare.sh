#!/usr/bin/env bash
# lpm_compare.sh -- prefix-map against the shared longest-prefix-match
# baseline (prefix-trie, ip_network_table, treebitmap, iptrie, and a plain
# DIR-24-8), on the same synthetic full table, in one run.
#
# What it does:
#   1. copies the shared `lpm` benchmark to a temporary directory (the
#      shared copy is never modified), builds it, dumps its table as text
#      and runs it: build time, memory and lookups/s of every peer;
#   2. builds `prefix-map`'s `lpm_table` example with the same release
#      settings as the baseline (fat LTO, one codegen unit) and runs it on
#      the dumped table: build time, memory, single and batched lookups/s
#      over addresses drawn from inside the table, and mixed updates/s,
#      every answer sampled against an independent oracle;
#   3. runs the example once more built for x86-64-v2 (hardware popcount
#      in single lookups), unless V2=0;
#   4. prints the ratios against prefix-trie and DIR-24-8 as a final
#      `RESULT` line.
#
# Usage (from anywhere):  bench/lpm_compare.sh
# Environment: LOOKUPS (10000000), REPS (3), V2 (1), SHARED (path to the
# shared lpm folder, default ../shared/bench/lpm next to the repository,
# else /work/shared/bench/lpm), CARGO_TARGET_DIR (where the example builds
# go, under lpm-compare*/; default the repository's target/).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
LOOKUPS=${LOOKUPS:-10000000}
REPS=${REPS:-3}
V2=${V2:-1}
SHARED=${SHARED:-}
if [ -z "$SHARED" ]; then
    for c in "$ROOT/../shared/bench/lpm" /work/shared/bench/lpm; do
        if [ -f "$c/Cargo.toml" ]; then SHARED=$c; break; fi
    done
fi
[ -n "$SHARED" ] && [ -f "$SHARED/Cargo.toml" ] || { echo "shared lpm benchmark not found; set SHARED" >&2; exit 2; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cp -r "$SHARED" "$TMP/lpm"
rm -rf "$TMP/lpm/target"

echo "== building the baseline ($SHARED)"
(cd "$TMP/lpm" && CARGO_TARGET_DIR="$TMP/lpm/target" nice -n 10 cargo build --release -q)
"$TMP/lpm/target/release/lpm" --dump "$TMP/table" >/dev/null

echo "== building prefix-map's lpm_table example (fat LTO, 1 codegen unit, like the baseline)"
# A separate target directory keeps these profile overrides from
# invalidating the workspace's usual release build.
export CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET/lpm-compare" nice -n 10 \
    cargo build --release -q -p prefix-map --example lpm_table)
if [ "$V2" = 1 ]; then
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET/lpm-compare-v2" RUSTFLAGS="-C target-cpu=x86-64-v2" \
        nice -n 10 cargo build --release -q -p prefix-map --example lpm_table)
fi

echo "== baseline: $LOOKUPS lookups per set, $REPS reps"
"$TMP/lpm/target/release/lpm" --lookups "$LOOKUPS" --reps "$REPS" 2>/dev/null | tee "$TMP/ref.txt"

echo
echo "== prefix-map (baseline x86-64 target)"
"$TARGET/lpm-compare/release/examples/lpm_table" "$TMP/table" --lookups "$LOOKUPS" --reps "$REPS" | tee "$TMP/ours.txt"
if [ "$V2" = 1 ]; then
    echo "== prefix-map (built with -C target-cpu=x86-64-v2)"
    "$TARGET/lpm-compare-v2/release/examples/lpm_table" "$TMP/table" --lookups "$LOOKUPS" --reps "$REPS" \
        | sed 's/^FIGURES /FIGURES_V2 /' | tee -a "$TMP/ours.txt"
fi

# In-table lookup rate of a baseline row: `| fam | name | build | MiB | peak | random | hit | in-table | ...`.
ref_rate() { awk -F'|' -v fam="$1" -v name="$2" '$2 ~ " "fam" " && index($3, name) { gsub(/ /, "", $9); print $9; exit }' "$TMP/ref.txt"; }
ref_mem() { awk -F'|' -v fam="$1" -v name="$2" '$2 ~ " "fam" " && index($3, name) { gsub(/ /, "", $5); print $5; exit }' "$TMP/ref.txt"; }
fig() { awk -v tag="$1" -v fam="$2" -v key="$3" '$1 == tag && $2 == fam { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) print kv[2] } }' "$TMP/ours.txt"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.1fx", a / b; else print "n/a" }'; }

pt4=$(ref_rate v4 "prefix-trie"); d248=$(ref_rate v4 "DIR-24-8"); pt6=$(ref_rate v6 "prefix-trie")
d248mem=$(ref_mem v4 "DIR-24-8")
s4=$(fig FIGURES v4 single_mps); b4=$(fig FIGURES v4 batch_mps)
s6=$(fig FIGURES v6 single_mps); b6=$(fig FIGURES v6 batch_mps)
m4=$(fig FIGURES v4 mem_mib); m6=$(fig FIGURES v6 mem_mib)
bt4=$(fig FIGURES v4 build_ms); bt6=$(fig FIGURES v6 build_ms)
u4=$(fig FIGURES v4 updates_kps); u6=$(fig FIGURES v6 updates_kps)
ok="yes"
for f in $(awk '$1 ~ /^FIGURES/ { for (i = 3; i <= NF; i++) if ($i ~ /^ok=/) print substr($i, 4) }' "$TMP/ours.txt"); do
    [ "$f" = yes ] || ok="NO"
done
v2=""
if [ "$V2" = 1 ]; then
    s4v=$(fig FIGURES_V2 v4 single_mps); b4v=$(fig FIGURES_V2 v4 batch_mps)
    s6v=$(fig FIGURES_V2 v6 single_mps); b6v=$(fig FIGURES_V2 v6 batch_mps)
    v2="; x86-64-v2 build: v4 $s4v single ($(ratio "$s4v" "$d248") DIR-24-8) / $b4v batch ($(ratio "$b4v" "$d248")), v6 $s6v / $b6v M/s"
fi

echo
echo "RESULT lpm_compare: prefix-map v4 in-table $s4 M/s single ($(ratio "$s4" "$pt4") prefix-trie $pt4, $(ratio "$s4" "$d248") DIR-24-8 $d248), $b4 M/s batch ($(ratio "$b4" "$pt4") prefix-trie, $(ratio "$b4" "$d248") DIR-24-8); v6 $s6 M/s single ($(ratio "$s6" "$pt6") prefix-trie $pt6), $b6 M/s batch ($(ratio "$b6" "$pt6")); memory v4 $m4 MiB (DIR-24-8 $d248mem) + v6 $m6 MiB; build $bt4 + $bt6 ms; updates $u4 k/s v4, $u6 k/s v6${v2}; oracle agrees: $ok"
[ "$ok" = yes ]
