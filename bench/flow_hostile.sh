#!/usr/bin/env bash
# flow_hostile.sh -- the flow collector's memory under a hostile template
# stream (issue 12, item 10): 16,000 maximal NetFlow v9 templates (16,369
# fields) and 16,000 of the largest allowed size (1,024 fields), from one
# exporter, interleaved with valid records of known content. Reports the
# collector's peak RSS (VmHWM) against its memory_limit and checks that the
# valid records are recorded exactly (`tollgate usage`).
#
# Usage: bench/flow_hostile.sh
# Environment:
#   N          templates per phase (16000)
#   MEMORY     [flows] memory_limit (256mb)
#   WORKERS    [flows] workers (2)
#   TOLLGATE   the binary (default: build and use target/release/tollgate)
# Runs on loopback, no root needed. Take figures under
# `flock /work/locks/bench` on the shared machine.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-16000}
MEMORY=${MEMORY:-256mb}
WORKERS=${WORKERS:-2}
PORT=${PORT:-29155}
if [ -z "${TOLLGATE:-}" ]; then
    cargo build --release -q -p tollgate --manifest-path "$ROOT/Cargo.toml"
    TOLLGATE=${CARGO_TARGET_DIR:-$ROOT/target}/release/tollgate
fi
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

{
    cat <<POLICY
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "1gbit", up = "1gbit" }
[realms]
default = "international"
[realms.national]
id = 1
prefixes = ["198.51.100.0/24"]
[realms.international]
id = 2
[plans.basic]
down = { rate = "10mbit", ceil = "100mbit" }
up = { rate = "10mbit", ceil = "100mbit" }
[flows]
listen = ["127.0.0.1:$PORT"]
workers = $WORKERS
memory_limit = "$MEMORY"
[[flows.exporters]]
address = "127.0.0.1"
POLICY
    for k in $(seq 1 200); do
        printf '[[tenants]]\nid = %d\nplan = "basic"\nprefixes = ["100.64.%d.0/24"]\nmeasured_by = "flows"\n' "$k" "$k"
    done
} > "$WORK/policy.toml"
: > "$WORK/accounting.toml"
export TOLLGATE_CONFIG=$WORK/policy.toml TOLLGATE_STATE_DIR=$WORK/state TOLLGATE_ACCOUNTING=$WORK/accounting.toml
mkdir -p "$WORK/state"
"$TOLLGATE" flows collect --interval 1s 2> "$WORK/collector.log" &
PID=$!
for _ in $(seq 100); do [ -f "$WORK/state/flows-status.json" ] && break; sleep 0.1; done

python3 "$ROOT/bench/flow_hostile.py" "$PORT" "$PID" "$N" "$TOLLGATE" > "$WORK/result.json"
kill -TERM "$PID"
RC=0; wait "$PID" || RC=$?
PID=
"$TOLLGATE" usage --json --since 2000-01-01 > "$WORK/usage.json"
python3 - "$WORK/result.json" "$WORK/usage.json" "$RC" "$MEMORY" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); u = json.load(open(sys.argv[2]))
got = {}
for t in u["tenants"]:
    for row in t["totals"]:
        for d in ("up", "down"):
            if row[f"{d}_packets"]:
                got[f'{t["tenant"]}/{row["realm"]}/{d}'] = [row[f"{d}_bytes"], row[f"{d}_packets"]]
r["exact"] = got == r.pop("expected")
r["exit"] = int(sys.argv[3])
r["memory_limit"] = sys.argv[4]
print(json.dumps(r, indent=1))
sys.exit(0 if r["exact"] and r["exit"] == 0 else 1)
PY
