#!/usr/bin/env bash
# xdp_drop.sh -- how fast a victim's flood is dropped: the eBPF
# classifier's XDP drop list against the nftables classifier's drop set
# (issues 15 and 17).
#
# attacker ──veth── router ──veth── victim (namespaces):
#   198.51.100.2  wan0 | lan0   203.0.113.10 (tenant 1, the victim)
# For each mode, `tollgate apply` with a policy whose ladder has a `drop`
# rung, then the victim's element is put in place by hand (what the rung
# does: `guard_drop_in4` for nftables, a `tg_xdrop4` entry for XDP), then
# `hping3 -S --flood` at the victim for SECS seconds (stopped with SIGINT,
# so hping3 prints how many it sent). On veth the sender's CPU also runs
# the receiving side, so what it sent per second is bounded by the cost
# of dropping: XDP drops at the uplink's driver, nftables on the LAN's
# egress hook after routing. The XDP run checks that its counter saw what
# was sent. The measured path is the kernel's: the tollgate binary only
# sets it up, so a debug build is as good as a release one.
#
# Usage (root; hping3, bpftool, nft):
#   cargo build -p tollgate
#   flock -o /work/locks/bench bash bench/xdp_drop.sh
# Env: TOLLGATE (default target/debug/tollgate), SECS=5, REPS=3.
# Then the program's own cost per packet (BPF_PROG_TEST_RUN, `bpftool
# prog run … repeat 1000000`, the kernel's average): a TCP SYN to the
# victim (in the list: dropped at the first lookup) and one to another
# address (not in it: three lookups, then passed).
# Last lines:
#   RESULT xdp_drop nft_pps=… xdp_pps=… ratio=… (medians; ratio = xdp / nft)
#   RESULT xdp_cost drop_ns=… pass_ns=…
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
TOLLGATE=${TOLLGATE:-$ROOT/target/debug/tollgate}
SECS=${SECS:-5}
REPS=${REPS:-3}
A=tgxdpb-a R=tgxdpb-r V=tgxdpb-v
DIR=$(mktemp -d)
cleanup() {
  for n in $A $R $V; do ip netns del $n 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT
cleanup 2>/dev/null || true
DIR=$(mktemp -d)

ip netns add $A; ip netns add $R; ip netns add $V
ip link add atk0 netns $A type veth peer name wan0 netns $R
ip link add lan0 netns $R type veth peer name vic0 netns $V
ip -n $A addr add 198.51.100.2/24 dev atk0; ip -n $A link set atk0 up
ip -n $R addr add 198.51.100.1/24 dev wan0; ip -n $R link set wan0 up
ip -n $R addr add 203.0.113.1/24 dev lan0; ip -n $R link set lan0 up
ip -n $V addr add 203.0.113.10/24 dev vic0; ip -n $V link set vic0 up
for n in $A $R $V; do ip -n $n link set lo up; done
ip -n $A route add default via 198.51.100.1
ip -n $V route add default via 203.0.113.1
ip netns exec $R sysctl -qw net.ipv4.ip_forward=1
# The victim's MAC is known to the router: no ARP in the measured path.
ip netns exec $R ping -c1 -W1 203.0.113.10 >/dev/null

policy() {
  cat > "$DIR/policy.toml" <<EOF
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "1gbit", up = "1gbit" }
classifier = "$1"

[plans.home]
down = { rate = "50mbit", ceil = "50mbit" }
up = { rate = "50mbit", ceil = "50mbit" }

[[tenants]]
id = 1
name = "victim"
plan = "home"
prefixes = ["203.0.113.10/32"]

[guard]
networks = ["203.0.113.0/24"]

[guard.thresholds]
pps_in = 2000

[[guard.ladder]]
rung = "drop"
hold = "1m"
EOF
}

tg() { "$TOLLGATE" --netns $R -c "$DIR/policy.toml" --state-dir "$DIR/state" "$@"; }

# The map named $1 of the XDP program on wan0.
xdp_map() {
  local prog
  prog=$(ip -n $R -j link show wan0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["xdp"]["prog"]["id"])')
  for m in $(bpftool prog show id "$prog" -j | python3 -c 'import json,sys; print(*json.load(sys.stdin)["map_ids"])'); do
    if bpftool map show id "$m" -j | grep -q "\"name\":\"$1\""; then echo "$m"; return; fi
  done
}

xdp_dropped() {
  bpftool map dump id "$(xdp_map tg_xstats)" -j | python3 -c '
import json,sys
for e in json.load(sys.stdin):
    e = e.get("formatted", e)
    if e["key"] == 1:
        print(sum(c["value"]["packets"] for c in e["values"]))'
}

# One flood: the packets hping3 sent per second.
flood() {
  local out sent
  out=$(ip netns exec $A timeout -s INT "$SECS" hping3 -S -p 80 --flood 203.0.113.10 2>&1 || true)
  sent=$(echo "$out" | grep -o '[0-9]* packets transmitted' | grep -o '^[0-9]*')
  echo "$sent"
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

NFT="" XDP=""
for rep in $(seq "$REPS"); do
  policy nftables
  tg apply >/dev/null 2>&1
  ip netns exec $R nft add element netdev tollgate guard_drop_in4 '{ 203.0.113.10 }'
  sent=$(flood)
  pps=$((sent / SECS))
  echo "rep $rep nftables: sent $sent in ${SECS}s = $pps pps"
  NFT="$NFT $pps"
  tg down >/dev/null

  policy ebpf
  tg apply >/dev/null 2>&1
  # The rung's entry: prefix length 32 + 32, way 0, any protocol and
  # port, 203.0.113.10; why 1 (a rung).
  bpftool map update id "$(xdp_map tg_xdrop4)" key hex 40 00 00 00 00 00 00 00 cb 00 71 0a value hex 01 00 00 00
  before=$(xdp_dropped)
  sent=$(flood)
  dropped=$(( $(xdp_dropped) - before ))
  pps=$((sent / SECS))
  echo "rep $rep xdp: sent $sent in ${SECS}s = $pps pps; XDP counted $dropped dropped"
  XDP="$XDP $pps"
  tg down >/dev/null
done
# The program's cost per packet, with the victim in the list.
policy ebpf
tg apply >/dev/null 2>&1
bpftool map update id "$(xdp_map tg_xdrop4)" key hex 40 00 00 00 00 00 00 00 cb 00 71 0a value hex 01 00 00 00
prog=$(ip -n $R -j link show wan0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["xdp"]["prog"]["id"])')
syn() { # a TCP SYN from 198.51.100.2:40000 to 203.0.113.$1:80
  printf '\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00'
  printf '\x45\x00\x00\x28\x00\x00\x00\x00\x40\x06\x00\x00\xc6\x33\x64\x02\xcb\x00\x71'"\\x$(printf %02x "$1")"
  printf '\x9c\x40\x00\x50\x00\x00\x00\x00\x00\x00\x00\x00\x50\x02\x20\x00\x00\x00\x00\x00'
}
cost() {
  syn "$1" > "$DIR/frame"
  bpftool prog run id "$prog" data_in "$DIR/frame" repeat 1000000 | grep -o 'duration (average): [0-9]*ns' | grep -o '[0-9]*'
}
DROPS="" PASSES=""
for rep in $(seq "$REPS"); do
  DROPS="$DROPS $(cost 10)"
  PASSES="$PASSES $(cost 20)"
done
echo "program cost: drop$DROPS ns, pass$PASSES ns"
tg down >/dev/null
n=$(echo "$NFT" | median)
x=$(echo "$XDP" | median)
echo "RESULT xdp_cost drop_ns=$(echo "$DROPS" | median) pass_ns=$(echo "$PASSES" | median) (medians of$DROPS and$PASSES; bpftool prog run, repeat 1000000)"
echo "RESULT xdp_drop nft_pps=$n xdp_pps=$x ratio=$(python3 -c "print(round($x / $n, 2))") (medians of$NFT and$XDP; ${SECS}s floods)"
