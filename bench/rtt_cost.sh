#!/usr/bin/env bash
# rtt_cost.sh N -- the cost of passive TCP RTT ([latency] tcp_rtt = true)
# in the eBPF classifier at N tenants: 64-byte UDP packets/s and TCP
# throughput through tollgate's shaper with RTT tracking off and on, side
# by side in every repetition (the same harness as classify_compare.sh,
# ../shared/bench/tc_classify_tput.sh, product mode only, fresh namespaces
# per run, two realms).
#
# What the tracking costs per packet: UDP only a protocol test; every TCP
# segment of a tenant a flow-state lookup in tg_rtt_flows, its options
# read, and (ACK with a timestamp) one lookup in tg_rtt_ts; at most one
# TSval per flow and direction per 100 ms is written. No daemon drains
# the ring buffer here: the at most 20 events/s of the one TCP flow find
# it full after a while and are counted as dropped, which costs the
# program a failed reserve instead of a write: immaterial at that rate.
#
# Usage: bench/rtt_cost.sh N   (as root; cargo build --release -p tollgate)
# Env:   REPS (3), DUR (5), UDP_LEN (64)
set -euo pipefail
N=${1:?usage: rtt_cost.sh N}
REPS=${REPS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}   # from a worktree under /work/wt: SHARED=/work/shared/bench
TG=${TOLLGATE:-$ROOT/target/release/tollgate}
[[ -x $TG ]] || { echo "build first: cargo build --release -p tollgate" >&2; exit 1; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
shaper_cmd() {  # $1: more options for the policy (--rtt)
echo "set -e
ip link add tgu0 type veth peer name tgu1; ip link set tgu0 up; ip link set tgu1 up
python3 $HERE/plan_csv_to_policy.py \$PLAN \$DEV tgu0 --realms --classifier ebpf ${1:-} > $W/policy.toml
$TG apply -c $W/policy.toml > /dev/null 2>&1
probe=\$(tail -1 \$PLAN | cut -d, -f2)
iperf3 -c \$probe -A 0 -u -b 1M -t 1 > /dev/null
bytes=\$($TG status --json --interval 10ms -c $W/policy.toml 2>/dev/null | python3 -c 'import json,sys; n=int(sys.argv[1]); print(sum(c[\"bytes\"] for c in json.load(sys.stdin)[\"classes\"] if c[\"tenant\"] == n and c[\"direction\"] == \"down\"))' \$N)
echo \"product check: probe tenant \$N's download classes carried \$bytes bytes\" >&2
[ \"\$bytes\" -gt 100000 ]"
}
for r in $(seq 1 "$REPS"); do
  # Alternate the order, so neither mode always runs on a warmer machine.
  if (( r % 2 )); then order="off on"; else order="on off"; fi
  for m in $order; do
    opt=""; [[ $m == on ]] && opt="--rtt"
    REPS=1 MODES=" " SHAPER_CMD="$(shaper_cmd $opt)" \
      bash "$SHARED/tc_classify_tput.sh" "$N" 2>&1 | sed "s/^| product /| rtt$m /" | tee -a "$W/runs" | grep -E "^\| rtt$m |RTNETLINK|rror|product check" || true
  done
done
python3 - "$W/runs" "$N" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = [x.strip() for x in line.split("|")]
    if len(f) > 5 and f[1] in ("rttoff", "rtton"):
        rows[f[1]].append((float(f[2]), float(f[3])))
for m, v in rows.items():
    print(f"  {m:7} TCP {statistics.median(x[0] for x in v):.2f} Gbit/s  UDP {statistics.median(x[1] for x in v):.0f} kpps sent")
pairs = list(zip(rows["rttoff"], rows["rtton"]))
u = [on[1] / off[1] for off, on in pairs]; t = [on[0] / off[0] for off, on in pairs]
print("  on/off per repetition: UDP " + " ".join(f"{x:.3f}" for x in u) + ", TCP " + " ".join(f"{x:.3f}" for x in t))
print(f"RESULT rtt_cost N={sys.argv[2]}: tcp_rtt on/off UDP pps {statistics.median(u):.3f}, TCP {statistics.median(t):.3f} (median of same-repetition ratios)")
PY
