#!/usr/bin/env bash
# central_load.sh -- many agents shipping to one central tollgate.
#
# Starts a central (`tollgate run` with a 10-tenant policy on a veth pair
# in a fresh namespace; nothing on the host touched, SQLite history in a
# temporary folder) and runs the load generator
# (crates/tollgate/examples/central_load.rs) in the same namespace: AGENTS
# simulated agents, each with TENANTS tenants (4 samples each per slot),
# first sending SLOTS closed slots each all at once (a catch-up after an
# outage of the central), then one more slot each at the same instant (a
# slot closing everywhere). Prints the generator's JSON: batches and
# samples per second, per-batch time, the slot's lag, and whether the
# central's own account of every writer (GET /api/v1/agents: sequence and
# bytes) equals what was sent; exits non-zero if it does not.
#
# Usage: bench/central_load.sh   (as root; cargo build --release -p tollgate --bin tollgate --example central_load)
# Env:   AGENTS (100), TENANTS (50), SLOTS (24), TOLLGATE, SHARED
set -euo pipefail
AGENTS=${AGENTS:-100}
TENANTS=${TENANTS:-50}
SLOTS=${SLOTS:-24}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
TG=${TOLLGATE:-$ROOT/target/release/tollgate}
LOAD=${LOAD:-$(dirname "$TG")/examples/central_load}
for b in "$TG" "$LOAD"; do
  [[ -x $b ]] || { echo "build first: cargo build --release -p tollgate --bin tollgate --example central_load" >&2; exit 1; }
done
NS=tgb-central-$$
W=$(mktemp -d)
PID=""
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; ip netns del "$NS" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link add v0 type veth peer name v1
ip -n "$NS" link set v0 up
ip -n "$NS" link set v1 up
ip -n "$NS" link set lo up
python3 "$SHARED/tcgen.py" plan -n 10 --per-parent 10 --dev v0 > "$W/plan.csv"
python3 "$HERE/plan_csv_to_policy.py" "$W/plan.csv" v0 v1 > "$W/policy.toml"
"$TG" token add agents --scope agent --json -c "$W/policy.toml" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' > "$W/agent.token"
TOLLGATE_LOG=warn "$TG" --netns "$NS" run -c "$W/policy.toml" --state-dir "$W/state" \
  --interval 2s --reconcile 10s > "$W/log" 2>&1 &
PID=$!
for _ in $(seq 100); do
  ip netns exec "$NS" curl -sf -o /dev/null -H "Authorization: Bearer $(cat "$W/agent.token")" \
    http://127.0.0.1:9188/api/v1/agents && break
  sleep 0.2
done
echo "central up (pid $PID); $AGENTS agents × $TENANTS tenants, $SLOTS slots of catch-up then one closing slot" >&2
ip netns exec "$NS" "$LOAD" --url http://127.0.0.1:9188 --token-file "$W/agent.token" \
  --agents "$AGENTS" --tenants "$TENANTS" --slots "$SLOTS"
grep -E "VmHWM" "/proc/$PID/status" >&2
kill -TERM "$PID"; wait "$PID" || true; PID=""
ls -l "$W/state/history.sqlite" | awk '{print "central history file: " $5 " bytes"}' >&2
