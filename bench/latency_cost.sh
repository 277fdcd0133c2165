#!/usr/bin/env bash
# latency_cost.sh N -- what latency's sampling costs the daemon at N tenants.
#
# Applies the same N-tenant policy as daemon_rss.sh in a fresh namespace
# (a veth pair v0/v1; nothing on the host touched) and runs `tollgate run`
# there twice for SECONDS each: once as is, once with `[latency]` (every
# class's queue read once a second, an ICMP probe to v1's address every
# second). It prints the CPU time of each of the daemon's threads (utime +
# stime from /proc/PID/task/*/stat) per second of run, and the size of
# latency-status.json and the classes in each reading.
#
# Usage: bench/latency_cost.sh N   (as root; cargo build --release -p tollgate)
# Env:   SECONDS_TO_RUN (30)
set -euo pipefail
N=${1:?usage: latency_cost.sh N}
RUN=${SECONDS_TO_RUN:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
TG=${TOLLGATE:-$ROOT/target/release/tollgate}
[[ -x $TG ]] || { echo "build first: cargo build --release -p tollgate" >&2; exit 1; }
NS=tgb-lat-$$
W=$(mktemp -d)
PID=""
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; ip netns del "$NS" 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link add v0 type veth peer name v1
ip -n "$NS" addr add 192.0.2.1/24 dev v0
ip -n "$NS" addr add 192.0.2.2/24 dev v1
ip -n "$NS" link set v0 up
ip -n "$NS" link set v1 up
ip -n "$NS" link set lo up
python3 "$SHARED/tcgen.py" plan -n "$N" --per-parent 100 --dev v0 > "$W/plan.csv"
python3 "$HERE/plan_csv_to_policy.py" "$W/plan.csv" v0 v1 > "$W/plain.toml"
cp "$W/plain.toml" "$W/latency.toml"
cat >> "$W/latency.toml" <<'TOML'

[latency]
sample = "1s"

[[latency.probes]]
realm = "default"
target = "192.0.2.2"
TOML
"$TG" --netns "$NS" apply -c "$W/plain.toml" 2>/dev/null
hz=$(getconf CLK_TCK)
# CPU seconds per thread name of process $1.
threads() {
  for t in /proc/"$1"/task/*; do
    # comm may hold spaces: find the fields after the closing parenthesis.
    # A thread may end between the listing and the read: skip it.
    line=$(cat "$t/stat" 2>/dev/null) && comm=$(cat "$t/comm" 2>/dev/null) || continue
    rest=${line##*) }; read -r -a f <<< "$rest"
    echo "$comm $(( f[11] + f[12] ))"
  done | awk -v hz="$hz" '{c[$1]+=$2} END {for (k in c) printf "%s %.3f\n", k, c[k]/hz}' | sort
}
for run in plain latency; do
  rm -rf "$W/state"
  TOLLGATE_LOG=info "$TG" --netns "$NS" run -c "$W/$run.toml" --state-dir "$W/state" \
    --interval 10s --reconcile 60s > "$W/$run.log" 2>&1 &
  PID=$!
  sleep 5   # the first round: observe, compile, apply nothing
  before=$(threads "$PID")
  sleep "$RUN"
  after=$(threads "$PID")
  echo "== $run: CPU seconds per second of run, by thread ($N tenants, $RUN s)"
  join -a 2 <(echo "$before") <(echo "$after") | awk -v s="$RUN" 'NF==3 {printf "  %-12s %.4f\n", $1, ($3-$2)/s} NF==2 {printf "  %-12s %.4f (new)\n", $1, $2/s}'
  if [[ $run == latency ]]; then
    ls -l "$W/state/latency-status.json" | awk '{print "  latency-status.json: " $5 " bytes"}'
    python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print("  classes per reading:", v["classes_read"], " busy in the file:", len(v["classes"]), " readings:", v["readings"])' "$W/state/latency-status.json"
  fi
  kill -TERM "$PID"; wait "$PID" || true; PID=""
done
