#!/usr/bin/env bash
# interface_profile.sh N -- where a small packet's time goes with the eBPF
# classifier and the trees on the interface (`shape_on = "interface"`),
# beside bare HTB: the same 64-byte UDP flood as classify_compare.sh
# (tc_classify_tput.sh's namespaces and tree), once through bare HTB (flat
# tree, default class = probe) and once through tollgate's plan, each with
# `perf record -a` for DUR seconds; prints each run's packets/s and the
# symbols with the largest share of the sending iperf3's samples (its
# sendmsg runs the qdisc's enqueue and, mostly, its dequeue), one after
# the other.
#
# Usage: bench/interface_profile.sh N   (as root; perf, iperf3, python3)
# Env:   DUR (4), UDP_LEN (64), TOP (25), SHARED, TOLLGATE
set -euo pipefail
N=${1:?usage: interface_profile.sh N}
DUR=${DUR:-4}; UDP_LEN=${UDP_LEN:-64}; TOP=${TOP:-25}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
TG=${TOLLGATE:-$ROOT/target/release/tollgate}
A="tgprof-$$-a"; B="tgprof-$$-b"; W=$(mktemp -d); SRV=""
cleanup() { [[ -n $SRV ]] && kill "$SRV" 2>/dev/null; ip netns del "$A" 2>/dev/null; ip netns del "$B" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
gen() { python3 "$SHARED/tcgen.py" "$@" --dev v0 -n "$N" --per-parent 100 --probe-rate 40gbit; }
PROBE=$(gen addr --tenant $((N - 1)))
ip netns add "$A"; ip netns add "$B"
ip -n "$A" link add v0 type veth peer name v1 netns "$B"
ip -n "$A" link set lo up; ip -n "$B" link set lo up
ip -n "$A" addr add 192.0.2.1/24 dev v0; ip -n "$B" addr add 192.0.2.2/24 dev v1
ip -n "$B" addr add "$PROBE/32" dev v1
ip -n "$A" link set v0 up; ip -n "$B" link set v1 up
ip -n "$A" route add 100.64.0.0/16 via 192.0.2.2
ip netns exec "$B" iperf3 -s -B "$PROBE" -A 1 >/dev/null 2>&1 & SRV=$!
gen tree --filters none > "$W/bare.batch"; gen plan > "$W/plan.csv"
ip -n "$A" link add tgu0 type veth peer name tgu1; ip -n "$A" link set tgu0 up; ip -n "$A" link set tgu1 up
python3 "$HERE/plan_csv_to_policy.py" "$W/plan.csv" v0 tgu0 --realms --classifier ebpf --shape-on interface > "$W/policy.toml"
sleep 1
run() {  # $1: label
  ip netns exec "$A" iperf3 -c "$PROBE" -A 0 -u -b 0 -l "$UDP_LEN" -t $((DUR + 2)) -J > "$W/$1.json" &
  local c=$!
  sleep 1
  perf record -q -a -o "$W/$1.data" -- sleep "$DUR" 2>/dev/null
  wait "$c"
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["end"]["sum"]; print("%s: %.0f kpps sent" % (sys.argv[2], s["packets"] / s["seconds"] / 1e3))' "$W/$1.json" "$1"
  perf report -q -i "$W/$1.data" --comms iperf3 --no-children --sort sym --percent-limit 0.5 2>/dev/null | head -"$TOP" > "$W/$1.top"
}
ip netns exec "$A" tc -batch "$W/bare.batch"
run bare
ip netns exec "$A" tc qdisc del dev v0 root
ip netns exec "$A" env TOLLGATE_STATE_DIR="$W/state" "$TG" apply -c "$W/policy.toml" > /dev/null
run interface
ip netns exec "$A" env TOLLGATE_STATE_DIR="$W/state" "$TG" down -c "$W/policy.toml" > /dev/null
echo; echo "== bare HTB"; cat "$W/bare.top"; echo; echo "== eBPF + interface"; cat "$W/interface.top"
