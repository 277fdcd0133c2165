#!/usr/bin/env bash
# classify_compare.sh N -- per-packet classification cost of tollgate's
# kernel plan at N tenants, side by side in one run with bare HTB and the
# hashed u32 classifier (../shared/bench/tc_classify_tput.sh).
#
# The product mode applies the same tenants as a tollgate policy (router
# mode, the shaped veth as the LAN side, a spare veth pair as the uplink)
# with two realms, so every packet takes nftables' realm lookup, the tenant
# lookup, the shard steering and the cBPF shard classifier on its way
# through nested HTB trees on an IFB. The probe tenant's rate and ceil are
# the harness's PROBE_RATE, so the shaper is not the limit.
#
# The harness checks that its own probe class carried the traffic; tollgate's
# classes live on an IFB, so the product's check is done here instead: right
# after applying, one second of UDP to the probe address must show up in the
# probe tenant's classes (`tollgate status --json`), else the run stops.
#
# The harness removes only the root qdisc of the shaped device between
# modes, so tollgate (which adds an IFB, clsact and an nftables table) runs
# last, and each repetition is a separate run of the harness with fresh
# namespaces.
#
# The eBPF classifier (`[site] classifier = "ebpf"`) is measured in the same
# repetition, right after the nftables product, by a second run of the
# harness with only the product mode and fresh namespaces; its rows are
# labelled "ebpf".
#
# The eBPF classifier with the trees on the shaped device's own root qdisc
# (`[site] shape_on = "interface"`: no IFB crossing, no mirred) is measured
# in the same repetition right after "ebpf", by one more run of the harness
# with only the product mode and fresh namespaces; its rows are labelled
# "ebpfif", and the summary gives its ratio to "none" (bare HTB) and to
# "ebpf" repetition by repetition. IFACE=0 leaves it out. (The harness
# deletes the shaped device's root qdisc before the product, so tollgate
# finds the kernel's default there and may take it.)
#
# With COUNTERS=1, a third run of the harness in each repetition measures
# the eBPF classifier with the guard's per-address counters on
# (`[guard.capture] source = "ebpf"`), labelled "ebpfcnt"; the summary then
# gives its ratio to "ebpf" repetition by repetition.
#
# With GUARD=1, one more run of the harness in each repetition measures the
# nftables product with a [guard] whose ladders have a throttle rung and
# both drop rungs (issue 15: the guard's empty sets looked up on every
# hook, docs/guard.md), labelled "guard"; the summary then gives its ratio
# to "product" repetition by repetition. (The kernel does the work, so a
# debug build measures the same: TOLLGATE=target/debug/tollgate.)
#
# Usage: bench/classify_compare.sh N   (as root; cargo build --release -p tollgate)
# Env:   REPS (3), DUR (5), UDP_LEN (64), MODES ("noqdisc none hash2"), NFT (1), IFACE (1), COUNTERS (0), GUARD (0)
set -euo pipefail
N=${1:?usage: classify_compare.sh N}
REPS=${REPS:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
TG=${TOLLGATE:-$ROOT/target/release/tollgate}
[[ -x $TG ]] || { echo "build first: cargo build --release -p tollgate" >&2; exit 1; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cat > "$W/guard.toml" <<'TOML'

[guard]
networks = ["100.64.0.0/10"]

[guard.thresholds]
pps_in = 10000000

[[guard.group]]
name = "sig"
prefixes = ["100.127.255.0/24"]
inherit = "global"

[[guard.group.ladder]]
rung = "drop"
hold = "1m"
match = "signature"

[[guard.ladder]]
rung = "throttle"
hold = "1m"
rate = "10mbit"

[[guard.ladder]]
rung = "drop"
after = "10s"
hold = "1m"
TOML
shaper_cmd() {  # $1: the classifier (nftables or ebpf); $2: more options (--counters); $3: guard to add [guard]
echo "set -e
ip link add tgu0 type veth peer name tgu1; ip link set tgu0 up; ip link set tgu1 up
python3 $HERE/plan_csv_to_policy.py \$PLAN \$DEV tgu0 --realms --classifier $1 ${2:-} > $W/policy.toml
${3:+cat $W/guard.toml >> $W/policy.toml}
$TG apply -c $W/policy.toml > /dev/null 2>&1
probe=\$(tail -1 \$PLAN | cut -d, -f2)
iperf3 -c \$probe -A 0 -u -b 1M -t 1 > /dev/null
bytes=\$($TG status --json --interval 10ms -c $W/policy.toml 2>/dev/null | python3 -c 'import json,sys; n=int(sys.argv[1]); print(sum(c[\"bytes\"] for c in json.load(sys.stdin)[\"classes\"] if c[\"tenant\"] == n and c[\"direction\"] == \"down\"))' \$N)
echo \"product check: probe tenant \$N's download classes carried \$bytes bytes\" >&2
[ \"\$bytes\" -gt 100000 ]"
}
for r in $(seq 1 "$REPS"); do
  # NFT=0: no nftables product (at 100,000 tenants its apply alone takes minutes).
  REPS=1 MODES="${MODES:-noqdisc none hash2}" SHAPER_CMD="$([[ ${NFT:-1} == 1 ]] && shaper_cmd nftables)" \
    bash "$SHARED/tc_classify_tput.sh" "$N" 2>&1 | tee -a "$W/runs" | grep -E "^\| (noqdisc|none|hash2|hash1|linear|product) |RTNETLINK|rror|product check" || true
  # MODES=" ": only the product mode (an empty value would mean the default list).
  REPS=1 MODES=" " SHAPER_CMD="$(shaper_cmd ebpf)" \
    bash "$SHARED/tc_classify_tput.sh" "$N" 2>&1 | sed 's/^| product /| ebpf /' | tee -a "$W/runs" | grep -E "^\| ebpf |RTNETLINK|rror|product check" || true
  if [[ ${IFACE:-1} == 1 ]]; then
    REPS=1 MODES=" " SHAPER_CMD="$(shaper_cmd ebpf '--shape-on interface')" \
      bash "$SHARED/tc_classify_tput.sh" "$N" 2>&1 | sed 's/^| product /| ebpfif /' | tee -a "$W/runs" | grep -E "^\| ebpfif |RTNETLINK|rror|product check" || true
  fi
  if [[ ${GUARD:-0} == 1 ]]; then
    REPS=1 MODES=" " SHAPER_CMD="$(shaper_cmd nftables '' guard)" \
      bash "$SHARED/tc_classify_tput.sh" "$N" 2>&1 | sed 's/^| product /| guard /' | tee -a "$W/runs" | grep -E "^\| guard |RTNETLINK|rror|product check" || true
  fi
  if [[ ${COUNTERS:-0} == 1 ]]; then
    REPS=1 MODES=" " SHAPER_CMD="$(shaper_cmd ebpf --counters)" \
      bash "$SHARED/tc_classify_tput.sh" "$N" 2>&1 | sed 's/^| product /| ebpfcnt /' | tee -a "$W/runs" | grep -E "^\| ebpfcnt |RTNETLINK|rror|product check" || true
  fi
done
python3 - "$W/runs" "$N" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = [x.strip() for x in line.split("|")]
    if len(f) > 5 and f[1] in ("noqdisc", "none", "hash2", "hash1", "linear", "product", "ebpf", "ebpfif", "ebpfcnt", "guard"):
        rows[f[1]].append((float(f[2]), float(f[3])))
print(f"\nmedians over {max(len(v) for v in rows.values())} runs, N={sys.argv[2]}:")
for m, v in rows.items():
    print(f"  {m:8} TCP {statistics.median(x[0] for x in v):.2f} Gbit/s  UDP {statistics.median(x[1] for x in v):.0f} kpps sent")
if "none" in rows:
    n_udp = statistics.median(x[1] for x in rows["none"]); n_tcp = statistics.median(x[0] for x in rows["none"])
if "none" in rows and "product" in rows:
    p_udp = statistics.median(x[1] for x in rows["product"]); p_tcp = statistics.median(x[0] for x in rows["product"])
    print(f"RESULT classify N={sys.argv[2]}: tollgate/bare-HTB UDP pps {p_udp/n_udp:.2f}, TCP {p_tcp/n_tcp:.2f}")
if "none" in rows and "ebpf" in rows:
    e_udp = statistics.median(x[1] for x in rows["ebpf"]); e_tcp = statistics.median(x[0] for x in rows["ebpf"])
    print(f"RESULT classify N={sys.argv[2]}: tollgate-ebpf/bare-HTB UDP pps {e_udp/n_udp:.2f}, TCP {e_tcp/n_tcp:.2f}")
if "none" in rows and "ebpfif" in rows:
    i_udp = statistics.median(x[1] for x in rows["ebpfif"]); i_tcp = statistics.median(x[0] for x in rows["ebpfif"])
    print(f"RESULT classify N={sys.argv[2]}: tollgate-ebpf-interface/bare-HTB UDP pps {i_udp/n_udp:.2f}, TCP {i_tcp/n_tcp:.2f} (medians of each column)")
    # Same repetition: the i-th row of each was measured minutes apart.
    for name, base in (("none", "bare HTB"), ("ebpf", "ebpf on the IFB"), ("product", "nftables on the IFB")):
        if name not in rows:
            continue
        pairs = list(zip(rows[name], rows["ebpfif"]))
        u = [i[1] / b[1] for b, i in pairs]; t = [i[0] / b[0] for b, i in pairs]
        print(f"  ebpf+interface / {base} per repetition: UDP " + " ".join(f"{x:.2f}" for x in u) + ", TCP " + " ".join(f"{x:.2f}" for x in t))
        print(f"RESULT classify N={sys.argv[2]}: ebpf+interface / {base} UDP pps {statistics.median(u):.2f}, TCP {statistics.median(t):.2f} (median of same-repetition ratios)")
if "product" in rows and "guard" in rows:
    pairs = list(zip(rows["product"], rows["guard"]))
    u = [g[1] / p[1] for p, g in pairs]; t = [g[0] / p[0] for p, g in pairs]
    print("  guard sets on/off per repetition: UDP " + " ".join(f"{x:.3f}" for x in u) + ", TCP " + " ".join(f"{x:.3f}" for x in t))
    print(f"RESULT classify N={sys.argv[2]}: guard sets on/off UDP pps {statistics.median(u):.3f}, TCP {statistics.median(t):.3f} (median of same-repetition ratios)")
if "ebpf" in rows and "ebpfcnt" in rows:
    # Same repetition: the i-th row of each was measured minutes apart.
    pairs = list(zip(rows["ebpf"], rows["ebpfcnt"]))
    u = [c[1] / e[1] for e, c in pairs]; t = [c[0] / e[0] for e, c in pairs]
    print("  counters on/off per repetition: UDP " + " ".join(f"{x:.3f}" for x in u) + ", TCP " + " ".join(f"{x:.3f}" for x in t))
    print(f"RESULT classify N={sys.argv[2]}: ebpf counters on/off UDP pps {statistics.median(u):.3f}, TCP {statistics.median(t):.3f} (median of same-repetition ratios)")
PY
