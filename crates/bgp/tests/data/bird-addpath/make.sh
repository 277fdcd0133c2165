#!/bin/bash
# Regenerates master4.mrt and master6.mrt: BIRD 2 dumps of a RIB learned
# with ADD-PATH (RFC 7911), which BIRD writes as the RFC 8050 subtypes
# RIB_IPV4_UNICAST_ADDPATH (8) and RIB_IPV6_UNICAST_ADDPATH (10), next to
# RIB_IPV4_UNICAST (2) for its own static route.
#
# The announcer (AS 65001, announcer.conf) sends two paths for
# 198.51.100.0/25 (communities 65000:100 and 65000:200) and for
# 2001:db8:100::/48 (community 65000:100, large community 65000:1:2), one
# for 203.0.113.0/24; the dumper (AS 65002, dumper.conf) receives them with
# `add paths rx` and dumps its tables with `mrt dump table`.
#
# Needs root and bird2. Runs in two network namespaces of its own, under
# the project's namespace lock:  flock /work/locks/netns ./make.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
run=$(mktemp -d)
cleanup() {
	for n in a b; do
		[ -f "$run/$n.pid" ] && kill "$(cat "$run/$n.pid")" 2>/dev/null || true
	done
	ip netns del tgbird-a 2>/dev/null || true
	ip netns del tgbird-b 2>/dev/null || true
	rm -rf "$run"
}
trap cleanup EXIT
ip netns add tgbird-a
ip netns add tgbird-b
ip -n tgbird-a link add tgba type veth peer name tgbb netns tgbird-b
ip -n tgbird-a addr add 192.0.2.1/24 dev tgba
ip -n tgbird-a addr add 2001:db8::1/64 dev tgba nodad
ip -n tgbird-b addr add 192.0.2.2/24 dev tgbb
ip -n tgbird-b addr add 2001:db8::2/64 dev tgbb nodad
for n in a b; do
	ip -n tgbird-$n link set lo up
	ip -n tgbird-$n link set tgb$n up
done
ip netns exec tgbird-a bird -c "$here/announcer.conf" -s "$run/a.ctl" -P "$run/a.pid"
ip netns exec tgbird-b bird -c "$here/dumper.conf" -s "$run/b.ctl" -P "$run/b.pid"
for _ in $(seq 1 60); do
	up=$(birdc -s "$run/b.ctl" show protocols | grep -cE "^a[46] .*Established" || true)
	[ "$up" = 2 ] && break
	sleep 0.5
done
[ "$up" = 2 ] || { echo "BGP sessions did not come up" >&2; exit 1; }
# Let the routes arrive.
for _ in $(seq 1 20); do
	n=$(birdc -s "$run/b.ctl" show route count | grep -oE "^[0-9]+ of [0-9]+ routes" | cut -d' ' -f1 || true)
	[ "${n:-0}" -ge 6 ] && break
	sleep 0.5
done
birdc -s "$run/b.ctl" show route all
birdc -s "$run/b.ctl" mrt dump table master4 to "\"$here/master4.mrt\""
birdc -s "$run/b.ctl" mrt dump table master6 to "\"$here/master6.mrt\""
sleep 1
ls -l "$here"/*.mrt
