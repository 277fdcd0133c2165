#!/usr/bin/env bash
# tenant_ops.sh N -- single-tenant operations at N tenants: tollgate side by
# side with tc -batch (../shared/bench/tc_apply.sh), in one run.
#
# In a fresh namespace (a veth pair v0/v1, nothing on the host touched) it
# applies the same N-tenant tree as apply_compare.sh, then repeats OPREPS
# times:
#   rate change : one tenant's rate/ceil edited in the policy file, then
#                 `tollgate apply --json` (an HTB `class change`)
#   move        : `tollgate tenant move tK --plan base --parent pX`,
#                 alternating between two parents (new class, classification
#                 switched in one nft transaction, old class drained and
#                 deleted)
# and reports two figures for each: the apply step (the kernel changes
# alone, as tollgate reports them) and the whole command (start a process,
# parse the policy, read the kernel's state, compile, diff, apply). The
# tc -batch baseline's change-rate and move-mbb come from tc_apply.sh in the
# same run; they are the kernel change plus one `tc` process start.
#
# With CLASSIFIER=ebpf the policy chooses the eBPF classifier (issue 17),
# and each move also reports its classification switch: the time of the
# apply step's BPF map run (the `tg_classes` elements repointed), from the
# dataplane's debug log ("applied a run backend=bpf").
#
# Usage: bench/tenant_ops.sh N        (as root; cargo build --release -p tollgate)
# Env:   OPREPS (9), TC=0 to skip the tc_apply.sh baseline,
#        CLASSIFIER=ebpf|nftables (default: the policy does not choose)
set -euo pipefail
N=${1:?usage: tenant_ops.sh N}
OPREPS=${OPREPS:-9}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
TG=${TOLLGATE:-$ROOT/target/release/tollgate}
[[ -x $TG ]] || { echo "build first: cargo build --release -p tollgate" >&2; exit 1; }
[[ $EUID -eq 0 ]] || { echo "tenant_ops.sh: run as root" >&2; exit 1; }
NS=tgb-ops-$$
W=$(mktemp -d)
cleanup() { ip netns del "$NS" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link add v0 type veth peer name v1
ip -n "$NS" link set v0 up
ip -n "$NS" link set v1 up

python3 "$SHARED/tcgen.py" plan -n "$N" --per-parent "${PER_PARENT:-100}" --dev v0 > "$W/plan.csv"
python3 "$HERE/plan_csv_to_policy.py" "$W/plan.csv" v0 v1 ${CLASSIFIER:+--classifier "$CLASSIFIER"} > "$W/policy.toml"
P="$W/policy.toml"
t0=$(date +%s%N)
"$TG" --netns "$NS" apply -c "$P" > "$W/apply.txt" 2>> "$W/warnings"
t1=$(date +%s%N)
echo "full apply of $N tenants: $(( (t1 - t0) / 1000000 )) ms ($(cat "$W/apply.txt"))"

K=$(( N / 2 ))          # the tenant whose rate changes
M=$(( N / 2 + 2 ))      # the tenant that moves
PARENT=$(awk -v n="t$M" '$0 ~ "name = \""n"\"" {f=1} f && /^parent/ {gsub(/[" ]/,""); split($0,a,"="); print a[2]; exit}' "$P")
OTHER=$([[ $PARENT == p1 ]] && echo p2 || echo p1)
ms() { python3 -c "import sys; print(f'{(int(sys.argv[2]) - int(sys.argv[1])) / 1e6:.2f}')" "$1" "$2"; }
: > "$W/rows"
for r in $(seq 1 "$OPREPS"); do
  # The rate change: this tenant's own shape in the file, toggled.
  python3 - "$P" "t$K" "$r" <<'EOF'
import re, sys
path, name, rep = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(path).read()
start = text.index(f'name = "{name}"')
end = text.index("[[tenants]]", start) if "[[tenants]]" in text[start:] else len(text)
rate = "7mbit" if rep % 2 else "9mbit"
block = re.sub(r'down = \{ rate = "[^"]+"', f'down = {{ rate = "{rate}"', text[start:end])
open(path, "w").write(text[:start] + block + text[end:])
EOF
  t0=$(date +%s%N)
  "$TG" --netns "$NS" apply --json -c "$P" > "$W/rate.json" 2>> "$W/warnings"
  t1=$(date +%s%N)
  echo "rate $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['apply_ms'])" "$W/rate.json") $(ms "$t0" "$t1")" >> "$W/rows"
  to=$([[ $(( r % 2 )) -eq 1 ]] && echo "$OTHER" || echo "$PARENT")
  t0=$(date +%s%N)
  out=$(NO_COLOR=1 TOLLGATE_LOG=warn,linux_dataplane=debug "$TG" --netns "$NS" tenant move "t$M" --plan base --parent "$to" -c "$P" 2> "$W/move.err")
  t1=$(date +%s%N)
  echo "move $(sed -n 's/.* in \([0-9.]*\) ms.*/\1/p' <<<"$out" | head -1) $(ms "$t0" "$t1")" >> "$W/rows"
  # The classification switch: the move's BPF map run, if it had one.
  sw=$(sed -n 's/.*applied a run backend="\{0,1\}bpf"\{0,1\} changes=\([0-9]*\) ms=\([0-9.]*\).*/\2 \1/p' "$W/move.err" | head -1)
  [[ -n $sw ]] && echo "switch $sw" >> "$W/switch"
  grep -v "applied a run" "$W/move.err" >> "$W/warnings" || true
done
if [[ -s $W/switch ]]; then
  python3 - "$W/switch" "$N" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
ms = [float(r[1]) for r in rows]
print(f"tollgate move N={sys.argv[2]}: classification switch (BPF map run, {rows[0][2]} elements) median {statistics.median(ms):.3f} ms "
      f"(runs {', '.join(f'{x:.3f}' for x in ms)})")
EOF
fi
python3 - "$W/rows" "$N" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
n = sys.argv[2]
for op in ("rate", "move"):
    a = [float(r[1]) for r in rows if r[0] == op]
    w = [float(r[2]) for r in rows if r[0] == op]
    print(f"tollgate {op:4} N={n}: apply step median {statistics.median(a):.2f} ms "
          f"(runs {', '.join(f'{x:.2f}' for x in a)}); whole command median {statistics.median(w):.1f} ms")
EOF
ip netns del "$NS"
if [[ ${TC:-1} != 0 ]]; then
  SKIP_PERPROC=1 BATCH_MODES=hash2 REPS=1 OPREPS="$OPREPS" bash "$SHARED/tc_apply.sh" "$N" | grep -E "op\.batch|RESULT"
fi
