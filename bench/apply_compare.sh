#!/usr/bin/env bash
# apply_compare.sh N -- tollgate's full apply side by side with tc -batch,
# using ../shared/bench/tc_apply.sh in one run.
#
# The tenant plan CSV that tc_apply.sh hands to a product is generated here
# first (tcgen.py is deterministic), turned into a tollgate policy, and the
# timed product command is `tollgate apply` on it: parse, compile, observe
# the kernel, diff and apply, end to end. Needs root, a release build
# (cargo build --release -p tollgate), python3, tc and nft.
set -euo pipefail
N=${1:?usage: apply_compare.sh N}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
TG=${TOLLGATE:-$ROOT/target/release/tollgate}
[[ -x $TG ]] || { echo "build first: cargo build --release -p tollgate" >&2; exit 1; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
python3 "$SHARED/tcgen.py" plan -n "$N" --per-parent "${PER_PARENT:-100}" --dev v0 > "$W/plan.csv"
python3 "$HERE/plan_csv_to_policy.py" "$W/plan.csv" v0 v1 > "$W/policy.toml"
"$TG" check -c "$W/policy.toml" >/dev/null
# tollgate's own objects live on its IFBs and in its nft table; the product
# command removes them after each run so every repetition starts empty.
export PRODUCT_CMD="$TG apply -c $W/policy.toml --json > $W/last.json && cat $W/last.json >&2 && $TG down >/dev/null"
SKIP_PERPROC=${SKIP_PERPROC:-1} BATCH_MODES=${BATCH_MODES:-hash2} bash "$SHARED/tc_apply.sh" "$N"
