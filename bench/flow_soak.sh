#!/usr/bin/env bash
# flow_soak.sh -- the flow collector under a steady load for a long time:
# RSS must stay flat (within 10% after the first minute) and nothing may be
# dropped or lost.
#
# `tollgate flows collect` (512 tenants measured by flows, as in
# flow_ingest.sh) receives flowgen.py's NetFlow v9 at RATE flows/s for
# SECONDS; its RSS is sampled every 10 s. At the end the collector is
# stopped and what the history holds is compared with flowgen's exact
# ground truth, and the kernel's drop counter for its sockets is read from
# its status.
#
# Usage: bench/flow_soak.sh [RATE] [SECONDS]   (default 7680000 = 80% of
#        9.6M, and 600). Needs root; raises net.core.rmem_max for the run.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RATE=${1:-7680000}
SECONDS_=${2:-600}
PORT=${PORT:-29056}
SHARED=${SHARED:-}
if [ -z "$SHARED" ]; then
    for c in "$ROOT/../shared/bench" /work/shared/bench; do
        if [ -f "$c/flowgen.py" ]; then SHARED=$c; break; fi
    done
fi
[ -n "$SHARED" ] || { echo "shared bench harness not found; set SHARED" >&2; exit 2; }

cargo build --release -q -p tollgate --manifest-path "$ROOT/Cargo.toml"
TG=${CARGO_TARGET_DIR:-$ROOT/target}/release/tollgate
WORK=$(mktemp -d)
OLD_RMEM=$(sysctl -n net.core.rmem_max)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    sysctl -qw net.core.rmem_max="$OLD_RMEM"
    rm -rf "$WORK"
}
trap cleanup EXIT
sysctl -qw net.core.rmem_max=33554432

python3 "$ROOT/bench/flow_policy.py" --listen "127.0.0.1:$PORT" > "$WORK/policy.toml"
"$TG" flows collect -c "$WORK/policy.toml" --state-dir "$WORK/state" --interval 5s 2>"$WORK/log" &
PID=$!
sleep 1
python3 "$SHARED/flowgen.py" --proto v9 --port "$PORT" --fps "$RATE" --duration "$SECONDS_" \
    --max-seconds $((SECONDS_ + 60)) --json "$WORK/gen.json" >"$WORK/gen.out" &
GEN=$!
echo "# t_s rss_kib"
t=0
while kill -0 "$GEN" 2>/dev/null; do
    sleep 10
    t=$((t + 10))
    echo "$t $(awk '/VmRSS/ {print $2}' "/proc/$PID/status")" | tee -a "$WORK/rss"
done
wait "$GEN"
sleep 2
kill -TERM "$PID"
wait "$PID" || true
PID=
TOLLGATE=$TG python3 "$ROOT/bench/flow_count.py" "$WORK/state" > "$WORK/count"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
gen = json.load(open(w + "/gen.json"))
got = dict(kv.split("=") for kv in open(w + "/count").read().split())
st = json.load(open(w + "/state/flows-status.json"))
rss = [int(l.split()[1]) for l in open(w + "/rss") if int(l.split()[0]) >= 60]
drops = sum(s["kernel_drops"] for s in st["sockets"])
base, peak = rss[0], max(rss)
growth = (peak - base) / base * 100
ok = (int(got["flows"]) == gen["flows"] and int(got["bytes"]) == gen["bytes"]
      and int(got["packets"]) == gen["packets"] and drops == 0 and growth <= 10)
print("RESULT flow_soak rate=%.0f seconds=%.0f flows_sent=%d flows_recorded=%s bytes_exact=%s "
      "kernel_drops=%d rss_after_60s_kib=%d rss_peak_kib=%d rss_growth_pct=%.1f %s" % (
      gen["fps"], gen["elapsed_s"], gen["flows"], got["flows"], int(got["bytes"]) == gen["bytes"],
      drops, base, peak, growth, "OK" if ok else "FAIL"))
PY
