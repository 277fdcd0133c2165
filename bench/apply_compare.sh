#!/usr/bin/env bash
# apply_compare.sh N -- tollgate's full apply side by side with tc -batch,
# using ../shared/bench/tc_apply.sh in one run.
#
# The tenant plan CSV that tc_apply.sh hands to a product is generated here
# first (tcgen.py is deterministic), turned into a tollgate policy, and the
# timed product command is `tollgate apply` on it: parse, compile, observe
# the kernel, diff and apply, end to end. Then the kernel's floor: the
# same HTB trees made again through raw rtnetlink alone (see the end).
# Needs root, release builds (cargo build --release -p tollgate, and
# cargo build --release -p linux-dataplane --example htb_floor), python3,
# tc and nft.
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
# SKIP_TC=1 runs only the floor below.
if [[ ${SKIP_TC:-0} != 1 ]]; then
  SKIP_PERPROC=${SKIP_PERPROC:-1} BATCH_MODES=${BATCH_MODES:-hash2} bash "$SHARED/tc_apply.sh" "$N"
fi

# The kernel's floor (issue 17): the same HTB qdiscs and classes that
# `tollgate apply` made, created again on fresh IFBs through raw
# rtnetlink and nothing else (crates/linux-dataplane/examples/htb_floor.rs),
# REPS times, in a namespace of its own with the policy's two veths.
FLOOR=${FLOOR:-$ROOT/target/release/examples/htb_floor}
if [[ -x $FLOOR ]]; then
  NS=tgfloor$$
  ip netns add "$NS"
  trap 'ip netns del "$NS" 2>/dev/null || true; rm -rf "$W"' EXIT
  ip -n "$NS" link add v0 type veth peer name v1
  ip -n "$NS" link set v0 up; ip -n "$NS" link set v1 up
  # Each repetition: tollgate applies, the floor reads its trees, removes
  # them (untimed) and builds them again (timed), tollgate takes down the
  # rest. tollgate's own apply report (apply_ms) is kept beside it.
  for r in $(seq 1 "${FLOOR_REPS:-${REPS:-3}}"); do
    ip netns exec "$NS" "$TG" apply -c "$W/policy.toml" --json > "$W/floor-apply.json"
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(f'tollgate apply step {d[\"apply_ms\"]/1e3:.3f} s, round {d[\"round_ms\"]/1e3:.3f} s')" "$W/floor-apply.json" | tee -a "$W/floor-tollgate.txt"
    ip netns exec "$NS" "$FLOOR" | tee -a "$W/floor.jsonl"
    ip netns exec "$NS" "$TG" down > /dev/null
  done
  python3 - "$W/floor.jsonl" "$N" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
own = [l.split() for l in open(sys.argv[1].replace("floor.jsonl", "floor-tollgate.txt"))]
steps = [float(x[3]) for x in own]
rounds = [float(x[6]) for x in own]
s = [r["seconds"] for r in runs]
print(f"RESULT floor N={sys.argv[2]} classes={runs[0]['classes']} qdiscs={runs[0]['qdiscs']} "
      f"median_s={statistics.median(s):.3f} runs={','.join(f'{x:.3f}' for x in s)} "
      f"tollgate_apply_step_s={statistics.median(steps):.3f} tollgate_round_s={statistics.median(rounds):.3f} "
      f"round_over_floor={statistics.median(rounds) / statistics.median(s):.2f}")
PY
else
  echo "no floor: cargo build --release -p linux-dataplane --example htb_floor" >&2
fi
