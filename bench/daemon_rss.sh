#!/usr/bin/env bash
# daemon_rss.sh N -- the daemon's memory and round times with N tenants.
#
# Applies the same N-tenant policy as apply_compare.sh in a fresh namespace
# (a veth pair v0/v1; nothing on the host touched), runs `tollgate run`
# there for SECONDS with the counters read every 2 s and a reconcile every
# 10 s, and prints its peak and final RSS (VmHWM, VmRSS) and the round
# times it logged. No traffic flows, so this is the daemon's floor: every
# class is still read, accounted and committed each interval. The API is
# on (the default listener, in the namespace) and asked every second for
# the status, a page of tenants, one tenant's month and the metrics, so
# the figure includes what serving them costs.
#
# Usage: bench/daemon_rss.sh N   (as root; cargo build --release -p tollgate)
# Env:   SECONDS_TO_RUN (40)
set -euo pipefail
N=${1:?usage: daemon_rss.sh N}
RUN=${SECONDS_TO_RUN:-40}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
TG=${TOLLGATE:-$ROOT/target/release/tollgate}
[[ -x $TG ]] || { echo "build first: cargo build --release -p tollgate" >&2; exit 1; }
NS=tgb-rss-$$
W=$(mktemp -d)
PID=""
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; ip netns del "$NS" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link add v0 type veth peer name v1
ip -n "$NS" link set v0 up
ip -n "$NS" link set v1 up
ip -n "$NS" link set lo up
python3 "$SHARED/tcgen.py" plan -n "$N" --per-parent 100 --dev v0 > "$W/plan.csv"
python3 "$HERE/plan_csv_to_policy.py" "$W/plan.csv" v0 v1 > "$W/policy.toml"
"$TG" --netns "$NS" apply -c "$W/policy.toml" 2>/dev/null
TOLLGATE_LOG=info "$TG" --netns "$NS" run -c "$W/policy.toml" --state-dir "$W/state" \
  --interval 2s --reconcile 10s > "$W/log" 2>&1 &
PID=$!
SECRET=$("$TG" token add bench --scope read -c "$W/policy.toml" | grep -oE 'tg_[A-Za-z0-9_-]+' | head -1)
ask() { ip netns exec "$NS" curl -sf -o /dev/null -H "Authorization: Bearer $SECRET" "http://127.0.0.1:9188$1" || echo "API: $1 failed" >&2; }
for _ in $(seq "$RUN"); do
  ask /api/v1/status; ask "/api/v1/tenants?limit=100"; ask /api/v1/tenants/1/usage; ask /metrics
  sleep 1
done
grep -E "VmHWM|VmRSS" "/proc/$PID/status"
kill -TERM "$PID"; wait "$PID" || true; PID=""
echo "log lines mentioning rounds or reads (last 6):"
grep -iE "round|read|account|ms" "$W/log" | tail -6
