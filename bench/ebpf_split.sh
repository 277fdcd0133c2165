#!/usr/bin/env bash
# ebpf_split.sh N -- where the eBPF + interface path's per-packet cost
# over bare HTB comes from, measured side by side in one run: the program
# or the nested shard tree. The same 64-byte UDP flood as
# classify_compare.sh (../shared/bench/tc_classify_tput.sh's namespaces,
# addresses and bare tree, tcgen.py), through five variants:
#
#   bare        tcgen.py's flat HTB (default class = the probe), no hook
#   bare+const  the same, plus bench/const_class.c on clsact egress
#               (writes the probe's class, no parsing, no lookups): the hook
#   bare+prog   the same flat HTB, with tollgate's own tg_down and its
#               maps (the program tollgate loaded for tree+prog, pinned on
#               a private bpffs and attached in front): the program
#   tree+const  tollgate's trees (nested shards) with const_class.c in
#               front of tollgate's filter (the probe's class and shard):
#               the shard tree with a classifier that costs nothing
#   tree+prog   tollgate as shipped (shape_on = "interface", eBPF):
#               what classify_compare.sh's `ebpfif` rows measure
#
# Two namespace pairs (tgsplit-PID-*) are built once; each repetition
# runs the variants one after the other, so the ratios within a
# repetition compare runs seconds apart. Each run checks that the class it
# meant to use carried the flood (its packet counter grew by at least
# 90% of what iperf3 sent), else the script stops.
#
# Usage: bench/ebpf_split.sh N   (as root; cargo build --release -p tollgate; clang)
# Env:   REPS (5), DUR (5), UDP_LEN (64), SHARED, TOLLGATE, PER_PARENT (100)
set -euo pipefail
N=${1:?usage: ebpf_split.sh N}
REPS=${REPS:-5}; DUR=${DUR:-5}; UDP_LEN=${UDP_LEN:-64}; PER_PARENT=${PER_PARENT:-100}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
TG=${TOLLGATE:-$ROOT/target/release/tollgate}
[[ -x $TG ]] || { echo "build first: cargo build --release -p tollgate" >&2; exit 1; }
# A private mount namespace: the bpffs that pins tollgate's program for
# bare+prog goes with this script.
if [[ -z ${TGSPLIT_PRIVATE:-} ]]; then
  exec unshare -m --propagation private env TGSPLIT_PRIVATE=1 bash "$0" "$@"
fi
W=$(mktemp -d); PIDS=(); NSS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for n in "${NSS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  umount "$W/bpffs" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
gen() { python3 "$SHARED/tcgen.py" "$@" --dev v0 -n "$N" --per-parent "$PER_PARENT" --probe-rate 40gbit; }
PROBE=$(gen addr --tenant $((N - 1)))
BARE_CLASS=$(printf '0x1%04x' $((0x1000 + N - 1)))
gen tree --filters none > "$W/bare.batch"; gen plan > "$W/plan.csv"
python3 "$HERE/plan_csv_to_policy.py" "$W/plan.csv" v0 tgu0 --realms --classifier ebpf --shape-on interface > "$W/policy.toml"
cc() {  # $1 out, $2 class, $3 mark
  clang -target bpf -O2 -Wall -Werror "-I/usr/include/$(uname -m)-linux-gnu" -DCLASS="$2" -DMARK="$3" -c "$HERE/const_class.c" -o "$1"
}
pair() {  # $1 tag: namespaces tgsplit-PID-TAG-a/-b, v0 -> v1, the probe on v1
  local a="tgsplit-$$-$1-a" b="tgsplit-$$-$1-b"
  ip netns add "$a"; NSS+=("$a"); ip netns add "$b"; NSS+=("$b")
  ip -n "$a" link add v0 type veth peer name v1 netns "$b"
  ip -n "$a" link set lo up; ip -n "$b" link set lo up
  ip -n "$a" addr add 192.0.2.1/24 dev v0; ip -n "$b" addr add 192.0.2.2/24 dev v1
  ip -n "$b" addr add "$PROBE/32" dev v1
  ip -n "$a" link set v0 up; ip -n "$b" link set v1 up
  ip -n "$a" route add 100.64.0.0/10 via 192.0.2.2
  ip -n "$a" link add tgu0 type veth peer name tgu1; ip -n "$a" link set tgu0 up; ip -n "$a" link set tgu1 up
  ip netns exec "$b" iperf3 -s -B "$PROBE" -A 1 >/dev/null 2>&1 & PIDS+=($!)
}
tg() { local a=$1; shift; ip netns exec "$a" env TOLLGATE_STATE_DIR="$W/state-$a" "$TG" "$@"; }
pair tree; pair bare
TA="tgsplit-$$-tree-a"; BA="tgsplit-$$-bare-a"
# tollgate's tree first: creating a class costs more the more classes the
# kernel holds (all namespaces), so the big tree goes in while it is alone.
t0=$(date +%s.%N); tg "$TA" apply -c "$W/policy.toml" > /dev/null 2> "$W/apply.err" || { cat "$W/apply.err"; exit 1; }; t1=$(date +%s.%N)
ip netns exec "$BA" tc -batch "$W/bare.batch"; t2=$(date +%s.%N)
echo "tollgate apply (release) $(echo "$t1 - $t0" | bc) s; its tree on v0: $(ip netns exec "$TA" tc class show dev v0 | wc -l) classes, $(ip netns exec "$TA" tc qdisc show dev v0 | grep -c htb) HTB qdiscs; bare tree (tc -batch) $(echo "$t2 - $t1" | bc) s"
# tollgate's tg_down (the one on TA's v0, with its maps) pinned on this
# script's private bpffs, so that bare+prog runs the very same program.
PROG_ID=$(ip netns exec "$TA" tc filter show dev v0 egress | grep -o ' id [0-9]*' | head -1 | awk '{print $2}')
mkdir "$W/bpffs"; mount -t bpf bpf "$W/bpffs"
bpftool prog pin id "$PROG_ID" "$W/bpffs/tg_down"
# The probe's class in tollgate's tree: tg_down's choice for this flood
# (remote 192.0.2.1: the national realm; UDP: the normal band), read from
# the program itself: one packet's skb->priority is what the class's
# counter shows, so take the tree's class whose counter grew.
ip netns exec "$TA" tc -s class show dev v0 > "$W/before"
ip netns exec "$TA" iperf3 -c "$PROBE" -A 0 -u -b 10M -l "$UDP_LEN" -t 1 > /dev/null
ip netns exec "$TA" tc -s class show dev v0 > "$W/after"
TREE_CLASS=$(python3 - "$W/before" "$W/after" <<'PY'
import re, sys
def leaves(path):
    # The leaf classes of the shards: classes no other class names as its
    # parent, outside the root HTB 1: (whose classes hold the shards).
    count, parents, cur = {}, set(), None
    for line in open(path):
        if line.startswith("class htb"):
            f = line.split()
            cur = f[2]
            if "parent" in f:
                parents.add(f[f.index("parent") + 1])
        m = re.match(r"\s*Sent (\d+) bytes (\d+) pkt", line)
        if m and cur:
            count[cur] = int(m.group(2))
    return {c: n for c, n in count.items() if c not in parents and not c.startswith("1:")}
b, a = leaves(sys.argv[1]), leaves(sys.argv[2])
grew = sorted(((a[c] - b.get(c, 0), c) for c in a), reverse=True)
print(grew[0][1])
PY
)
maj=${TREE_CLASS%%:*}; min=${TREE_CLASS##*:}
TREE_HEX=$(printf '0x%04x%04x' $((16#$maj)) $((16#$min)))
echo "probe: $PROBE; bare class 1:$(printf '%x' $((0x1000 + N - 1))); tollgate's class $TREE_CLASS (shard $maj)"
cc "$W/bare_const.o" "$BARE_CLASS" 0
cc "$W/tree_const.o" "$TREE_HEX" "$((16#$maj))"
ip netns exec "$BA" tc qdisc add dev v0 clsact
pkts() {  # $1 ns, $2 class: the class's packet counter
  ip netns exec "$1" tc -s class show dev v0 classid "$2" | awk '/Sent/ {print $4; exit}'
}
run() {  # $1 label, $2 ns, $3 class to check
  local before after
  before=$(pkts "$2" "$3")
  ip netns exec "$2" iperf3 -c "$PROBE" -A 0 -u -b 0 -l "$UDP_LEN" -t "$DUR" -J > "$W/udp.json" || true
  after=$(pkts "$2" "$3")
  python3 - "$W/udp.json" "$1" "$before" "$after" <<'PY' | tee -a "$W/rows"
import json, sys
s = json.load(open(sys.argv[1]))["end"]["sum"]
grew = int(sys.argv[4]) - int(sys.argv[3])
if grew < 0.9 * s["packets"]:
    sys.exit(f"{sys.argv[2]}: the class carried {grew} of {s['packets']} packets")
print(f"{sys.argv[2]} {s['packets'] / s['seconds'] / 1e3:.1f}")
PY
}
echo "N=$N REPS=$REPS DUR=${DUR}s UDP_LEN=$UDP_LEN, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$REPS"); do
  run bare "$BA" "1:$(printf '%x' $((0x1000 + N - 1)))"
  ip netns exec "$BA" tc filter add dev v0 egress prio 1 bpf da obj "$W/bare_const.o" sec classifier
  run bare+const "$BA" "1:$(printf '%x' $((0x1000 + N - 1)))"
  ip netns exec "$BA" tc filter del dev v0 egress prio 1
  ip netns exec "$BA" tc filter add dev v0 egress prio 1 bpf object-pinned "$W/bpffs/tg_down"
  run bare+prog "$BA" "1:$(printf '%x' $((0x1000 + N - 1)))"
  ip netns exec "$BA" tc filter del dev v0 egress prio 1
  ip netns exec "$TA" tc filter add dev v0 egress prio 1 bpf da obj "$W/tree_const.o" sec classifier
  run tree+const "$TA" "$TREE_CLASS"
  ip netns exec "$TA" tc filter del dev v0 egress prio 1
  run tree+prog "$TA" "$TREE_CLASS"
  echo "(rep $r, load $(cut -d' ' -f1 /proc/loadavg))"
done
python3 - "$W/rows" "$N" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    k, v = line.split(); rows[k].append(float(v))
print(f"\nN={sys.argv[2]}: UDP kpps sent per repetition, and the median of the within-repetition ratios to bare")
for k, v in rows.items():
    ratios = [x / b for x, b in zip(v, rows["bare"])]
    print(f"  {k:11} " + " ".join(f"{x:6.1f}" for x in v) + f"   / bare: " + " ".join(f"{x:.3f}" for x in ratios)
          + f"   median {statistics.median(ratios):.3f}")
    print(f"RESULT ebpf_split N={sys.argv[2]} {k}/bare {statistics.median(ratios):.3f}")
PY
