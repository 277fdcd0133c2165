#!/usr/bin/env bash
# capture_rate.sh -- how fast the AF_PACKET capture (crates/packet-capture)
# keeps up with a SYN flood, and at what CPU cost; optionally FastNetMon's
# AF_PACKET capture on the same flood.
#
#   tgcb-a (198.51.100.2) --veth-- tgcb-v (203.0.113.10... on the same /24:
#   198.51.100.10)
#
# The capture runs inside tgcb-v on its veth (the example binary
# crates/packet-capture/examples/capture_stats.rs, one JSON line a second);
# hping3 --flood runs in tgcb-a for FLOOD_SECS (timeout). Reported:
#   - packets/s captured (the capture's own count) vs the interface's
#     counters (rx + tx: the victim answers every SYN with a RST, and the
#     capture counts both directions);
#   - kernel drops (PACKET_STATISTICS) and ring-full events;
#   - CPU seconds per million packets, from /proc/PID/stat (utime + stime
#     of the capturing process) over the flood.
# With FNM=1, FastNetMon (Debian's, AF_PACKET, fanout cpu, the config
# of ../shared/bench/ddos_detect.sh) is measured on the same flood.
#
# Usage (root; apt-get install hping3 [fastnetmon]):
#   flock -o /work/locks/bench bash bench/capture_rate.sh
# Env: FLOOD_SECS=5 THREADS=1 FANOUT=hash FNM=0 FLOOD_ARGS="-S -p 80 --flood"
# Last lines: RESULT capture_rate ... (and RESULT capture_rate_fastnetmon ...)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
FLOOD_SECS=${FLOOD_SECS:-5}
THREADS=${THREADS:-1}
FANOUT=${FANOUT:-hash}
FNM=${FNM:-0}
FLOOD_ARGS=${FLOOD_ARGS:--S -p 80 --flood}
NSA=tgcb-a; NSV=tgcb-v; IF=tgcbv
W=$(mktemp -d)
CAP_PID=""; FNM_PID=""
cleanup() {
  for p in $CAP_PID $FNM_PID; do kill -TERM -- "-$p" 2>/dev/null || true; done
  sleep 0.3
  for p in $CAP_PID $FNM_PID; do kill -KILL -- "-$p" 2>/dev/null || true; done
  ip netns del $NSA 2>/dev/null || true
  ip netns del $NSV 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT INT TERM
command -v hping3 >/dev/null || { echo "apt-get install hping3" >&2; exit 1; }

cd "$ROOT"
nice -n 10 cargo build --release -q -p packet-capture --example capture_stats
BIN=$ROOT/target/release/examples/capture_stats

ip netns del $NSA 2>/dev/null || true; ip netns del $NSV 2>/dev/null || true
ip netns add $NSA; ip netns add $NSV
ip link add tgcba netns $NSA type veth peer name $IF netns $NSV
ip -n $NSA addr add 198.51.100.2/24 dev tgcba; ip -n $NSA link set tgcba up; ip -n $NSA link set lo up
ip -n $NSV addr add 198.51.100.10/24 dev $IF; ip -n $NSV link set $IF up; ip -n $NSV link set lo up
ip netns exec $NSA hping3 -q -c 1 -S -p 80 198.51.100.10 >/dev/null 2>&1 || true

ticks() { awk '{sub(/.*\) /,""); print $12+$13}' /proc/"$1"/stat; }
ifpk() { ip netns exec $NSV sh -c "echo \$((\$(cat /sys/class/net/$IF/statistics/rx_packets) + \$(cat /sys/class/net/$IF/statistics/tx_packets)))"; }
HZ=$(getconf CLK_TCK)

# One measured flood against the process $1 (its group runs the detector).
# Prints: captured_or_empty interface_packets cpu_seconds seconds
flood_against() {
  local pid=$1
  local c0 i0 t0 c1 i1 t1
  c0=$(ticks "$pid"); i0=$(ifpk); t0=$(date +%s.%N)
  ip netns exec $NSA timeout "$FLOOD_SECS" hping3 $FLOOD_ARGS -q 198.51.100.10 >/dev/null 2>&1 || true
  sleep 0.3
  c1=$(ticks "$pid"); i1=$(ifpk); t1=$(date +%s.%N)
  echo "$((i1 - i0)) $(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN{printf "%.3f", (b-a)/hz}') $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')"
}

# ---------------------------------------------------------------- ours
RUN=$((FLOOD_SECS + 6))
setsid ip netns exec $NSV "$BIN" --iface $IF --local 198.51.100.10/32 \
  --threads "$THREADS" --fanout "$FANOUT" --seconds "$RUN" > "$W/cap.jsonl" 2> "$W/cap.err" &
CAP_PID=$!
sleep 1.5
# The capturing process is the example itself, exec'd by ip netns exec.
read -r IFPK CPU SECS < <(flood_against "$CAP_PID")
wait "$CAP_PID" || { cat "$W/cap.err"; exit 2; }
CAP_PID=""
TOTAL=$(grep '"total":true' "$W/cap.jsonl")
cat "$W/cap.jsonl" >&2
num() { echo "$TOTAL" | sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p"; }
FRAMES=$(num frames); DROPS=$(num kernel_drops); FREEZES=$(num ring_full_events); KPK=$(num kernel_packets)
TMIN=$(num tick_ms_min); TMAX=$(num tick_ms_max)
# The capture ran longer than the flood: its frames also hold the warm-up
# probe and any stragglers, so compare with the interface over the flood.
awk -v f="$FRAMES" -v i="$IFPK" -v c="$CPU" -v s="$SECS" -v d="$DROPS" -v z="$FREEZES" -v k="$KPK" \
  -v th="$THREADS" -v fo="$FANOUT" -v tmin="$TMIN" -v tmax="$TMAX" 'BEGIN{
  printf "RESULT capture_rate threads=%d fanout=%s flood_s=%.1f interface_packets=%d interface_pps=%.0f captured_frames=%d captured_pps=%.0f captured_ratio=%.4f kernel_packets=%d kernel_drops=%d ring_full_events=%d cpu_s=%.2f cpu_s_per_million_packets=%.3f tick_ms_min=%.1f tick_ms_max=%.1f\n",
    th, fo, s, i, i/s, f, f/s, (i>0?f/i:0), k, d, z, c, (i>0?c/(i/1e6):0), tmin, tmax }'

# ---------------------------------------------------------------- FastNetMon
if [ "$FNM" = 1 ]; then
  command -v fastnetmon >/dev/null || { echo "apt-get install fastnetmon" >&2; exit 1; }
  echo "198.51.100.10/32" > "$W/networks_list"; : > "$W/networks_whitelist"
  cat > "$W/fastnetmon.conf" <<EOF
logging_level = info
logging_local_syslog_logging = off
logging_remote_syslog_logging = off
disable_usage_report = on
enable_ban = off
process_incoming_traffic = on
process_outgoing_traffic = on
networks_list_path = $W/networks_list
white_list_path = $W/networks_whitelist
check_period = 1
enable_connection_tracking = off
ban_for_pps = on
threshold_pps = 100000000
mirror_afpacket = on
mirror_af_packet_custom_sampling_rate = 1
mirror_af_packet_fanout_mode = cpu
mirror_afxdp = off
mirror_netmap = off
pcap = off
netflow = off
sflow = off
interfaces = $IF
average_calculation_time = 5
speed_calculation_delay = 1
notify_script_path = /bin/true
collect_attack_pcap_dumps = off
redis_enabled = off
mongodb_enabled = off
exabgp = off
gobgp = off
influxdb = off
graphite = off
monitor_local_ip_addresses = off
pid_path = $W/fastnetmon.pid
cli_stats_file_path = $W/fastnetmon.dat
cli_stats_ipv6_file_path = $W/fastnetmon_ipv6.dat
enable_api = off
prometheus = off
kafka_traffic_export = off
EOF
  mkdir -p /var/log/fastnetmon_attacks
  setsid ip netns exec $NSV fastnetmon --configuration_file "$W/fastnetmon.conf" \
    --log_file "$W/fastnetmon.log" --disable_pid_logic > "$W/fnm.out" 2>&1 &
  FNM_PID=$!
  sleep 4
  # FastNetMon's own view mid-flood (its stats file is rewritten every
  # second): proof that it was counting the flood.
  (sleep 3; cp "$W/fastnetmon.dat" "$W/fnm-mid.dat" 2>/dev/null) &
  read -r IFPK2 CPU2 SECS2 < <(flood_against "$FNM_PID")
  echo "FastNetMon's stats 3 s into the flood:" >&2
  head -12 "$W/fnm-mid.dat" >&2 || echo "(no stats file: FastNetMon did not run; see $W/fastnetmon.log)" >&2
  awk -v i="$IFPK2" -v c="$CPU2" -v s="$SECS2" 'BEGIN{
    printf "RESULT capture_rate_fastnetmon flood_s=%.1f interface_packets=%d interface_pps=%.0f cpu_s=%.2f cpu_s_per_million_packets=%.3f\n",
      s, i, i/s, c, (i>0?c/(i/1e6):0) }'
fi
