#!/usr/bin/env bash
# realm_load.sh -- a full routing table's realms into the kernel: flatten,
# compile, apply (nftables interval maps), then 1% of routes changing realm.
#
# Uses the shared synthetic full table (1M IPv4 + 200k IPv6 prefixes) from
# ../shared/bench/lpm, dumped as text, in a fresh namespace with a veth
# pair as wan0/lan0. MODULO picks how many routes are national (1 in
# MODULO, scattered over the table, a worst case for merging).
#
# Usage: bench/realm_load.sh [MODULO]   (as root; default MODULO 20)
# Env:   TABLE (a folder with v4.txt and v6.txt; dumped here if unset)
set -euo pipefail
MODULO=${1:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
TABLE=${TABLE:-}
W=$(mktemp -d)
NS=tgb-realms-$$
cleanup() { ip netns del "$NS" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
if [[ -z $TABLE ]]; then
  cp -r "$SHARED/lpm" "$W/lpm"
  (cd "$W/lpm" && cargo run -q --release -- --dump "$W/table" >/dev/null)
  TABLE=$W/table
fi
(cd "$ROOT" && cargo build -q --release -p tollgate --example realm_load)
ip netns add "$NS"
ip -n "$NS" link add wan0 type veth peer name lan0
ip -n "$NS" link set wan0 up
ip -n "$NS" link set lan0 up
/usr/bin/time -f "peak RSS of tollgate: %M KiB" \
  "$ROOT/target/release/examples/realm_load" "$TABLE/v4.txt" "$TABLE/v6.txt" "$MODULO" "$NS"
