#!/usr/bin/env bash
# ddos_compare.sh -- flood start → ban notification, FastNetMon vs
# `tollgate guard watch`, at three flood sizes, in one run (issue 15).
#
# Each measurement is one run of the shared harness ddos_detect.sh
# (attacker → router → victim namespaces, the detector in the router
# capturing on its victim-side veth, a bounded hping3 SYN flood, the time
# until the detector calls the ban hook; RUNS runs, median):
#   - FastNetMon (Debian's, AF_PACKET), its default detector;
#   - tollgate, through the harness's DETECTOR_CMD hook, twice:
#       * "ewma":    the smoothed check only, τ = 5 s, the same as
#                    FastNetMon's average_calculation_time (a like-for-like
#                    comparison of the detection method);
#       * "instant": the same τ = 5 s plus the instantaneous trigger
#                    (instant = "300ms": every 100 ms tick over the
#                    threshold for 300 ms), the configuration docs/guard.md
#                    recommends.
# Flood sizes (hping3 -S -p 80, threshold 10,000 pps towards the victim):
#   220k: --flood      (about 220k pps on this machine)
#   25k:  -i u15       (about 25k pps; hping3's -i is a sleep, so the rate
#                       depends on the machine: measured 2026-12-06, u10 31k,
#                       u20 20k, u40 12.6k pps)
#   10k+: -i u40       (about 12.6k pps, just over the threshold)
# The pps each run really saw on the router's veth is in the output.
#
# Usage (root; apt-get install -y fastnetmon hping3; a release build):
#   nice cargo build --release -p tollgate
#   flock -o /work/locks/bench bash bench/ddos_compare.sh
# Env: DDOS_DETECT (the harness; default ../shared/bench/ddos_detect.sh
#   from the repository, or ../../shared/… from a worktree), RUNS=3,
#   THRESHOLD_PPS=10000, FLOOD_SECS=20, SIZES="220k:--flood;25k:-i u15;10k+:-i u40"
#   (name:hping3 arguments, separated by ";").
# Last line (one line):
#   RESULT ddos size=220k pps=… fnm_s=… tollgate_s=… ratio=… tollgate_ewma_s=… ratio_ewma=…; size=25k …
#   where tollgate_s is the "instant" configuration and ratio = tollgate_s / fnm_s.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
if [ -z "${DDOS_DETECT:-}" ]; then
  DDOS_DETECT=$ROOT/../shared/bench/ddos_detect.sh
  [ -f "$DDOS_DETECT" ] || DDOS_DETECT=$ROOT/../../shared/bench/ddos_detect.sh
fi
[ -f "$DDOS_DETECT" ] || { echo "no harness at $DDOS_DETECT (set DDOS_DETECT)"; exit 2; }
BIN=$ROOT/target/release/tollgate
[ -x "$BIN" ] || { echo "build it first: nice cargo build --release -p tollgate"; exit 2; }
export RUNS=${RUNS:-3}
export THRESHOLD_PPS=${THRESHOLD_PPS:-10000}
export NS_PREFIX=${NS_PREFIX:-tgdd}
SIZES=${SIZES:-"220k:--flood;25k:-i u15;10k+:-i u40"}
# The harness caps each flood at FLOOD_SECS and waits FLOOD_SECS + 5 s for
# a ban: at 1.2× the threshold an EWMA with τ = 5 s needs about 9 s.
export FLOOD_SECS=${FLOOD_SECS:-20}

W=$(mktemp -d "${TMPDIR:-/tmp}/ddos-compare.XXXXXX")
trap 'rm -rf "$W"' EXIT

# The tiny policies: a [guard] section and nothing else (the harness's
# placeholders give the interface, the threshold and the hook).
policy() {  # $1 = file, $2 = instant setting
  cat > "$1" <<EOF
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "10gbit", up = "10gbit" }

[guard]
networks = ["203.0.113.0/24"]
ewma = "5s"
instant = "$2"

[guard.thresholds]
pps_in = $THRESHOLD_PPS

[[guard.ladder]]
rung = "notify"
hold = "10m"
script = "/bin/true"   # replaced by --notify
EOF
}
policy "$W/ewma.toml" off
policy "$W/instant.toml" 300ms

tollgate_cmd() {  # $1 = policy
  echo "$BIN guard watch -c $1 --state-dir {dir}/state --iface {iface} --threshold-pps {pps} --notify {hook} --network 203.0.113.0/24"
}

# One harness run; prints "median pps cpu" (nan when undetected).
measure() {  # $1 = label, $2 = flood args, $3 = detector command ('' = FastNetMon)
  local log=$W/$(echo "$1" | tr -c 'a-zA-Z0-9' _).log
  FLOOD_ARGS="-S -p 80 $2" DETECTOR_CMD="$3" bash "$DDOS_DETECT" > "$log" 2>&1
  grep -E '^run [0-9]+:' "$log" | sed "s/^/  [$1] /" >&2
  local line; line=$(grep '^DDOS_DETECT' "$log" | tail -1)
  [ -n "$line" ] || { echo "  [$1] the harness failed:" >&2; tail -5 "$log" >&2; echo "nan nan nan"; return; }
  echo "  [$1] $line" >&2
  local f
  f() { local v; v=$(echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"); echo "${v:-nan}"; }
  echo "$(f median_latency_s) $(f flood_pps_median) $(f detector_cpu_pct_median)"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a+0 > 0 && b == b+0 && a == a+0) printf "%.2f", b/a; else print "nan" }'; }

OUT=()
IFS=';' read -r -a PAIRS <<< "$SIZES"
for pair in "${PAIRS[@]}"; do
  size=${pair%%:*}; args=${pair#*:}
  echo "== size $size: hping3 -S -p 80 $args, threshold $THRESHOLD_PPS pps, $RUNS runs each" >&2
  read -r fnm fnm_pps fnm_cpu < <(measure "$size fastnetmon" "$args" "")
  read -r ewma ewma_pps ewma_cpu < <(measure "$size tollgate-ewma" "$args" "$(tollgate_cmd "$W/ewma.toml")")
  read -r inst inst_pps inst_cpu < <(measure "$size tollgate-instant" "$args" "$(tollgate_cmd "$W/instant.toml")")
  echo "   size=$size fastnetmon ${fnm}s (${fnm_pps} pps, cpu ${fnm_cpu}%)  tollgate-ewma ${ewma}s (${ewma_pps} pps, cpu ${ewma_cpu}%)  tollgate-instant ${inst}s (${inst_pps} pps, cpu ${inst_cpu}%)" >&2
  OUT+=("size=$size pps=$fnm_pps fnm_s=$fnm tollgate_s=$inst ratio=$(ratio "$fnm" "$inst") tollgate_ewma_s=$ewma ratio_ewma=$(ratio "$fnm" "$ewma") cpu_pct_fnm=$fnm_cpu cpu_pct_tollgate=$inst_cpu")
done
line="RESULT ddos"
for i in "${!OUT[@]}"; do
  [ "$i" -gt 0 ] && line+=";"
  line+=" ${OUT[$i]}"
done
echo "$line"
