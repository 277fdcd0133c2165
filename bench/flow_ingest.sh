#!/usr/bin/env bash
# flow_ingest.sh -- sustainable NetFlow v9 / IPFIX ingest of tollgate's flow
# collector against nfdump's nfcapd and pmacct's nfacctd (tuned pipe), side
# by side in one run, with the shared harness (collector_ingest.py and
# flowgen.py from ../shared/bench, never modified).
#
# tollgate runs as `tollgate flows collect` with a policy of 512 tenants
# measured by flows (the /24s of flowgen's source net) and a national realm
# (flowgen's destination net), so every record is attributed to tenant ×
# realm × direction and committed to the history store; what is counted is
# what the store holds (bench/flow_count.py).
#
# Usage: bench/flow_ingest.sh [v9|ipfix]
# Environment:
#   RATES      comma list of flow records/s (default a ladder up to 12M)
#   COLLECTORS default "tollgate,nfcapd,nfacctd-tuned"
#   DURATION   seconds per trial (10), REPEATS (3)
#   SHARED     the shared bench folder (default ../shared/bench)
# Needs root (it raises net.core.rmem_max to 32 MiB for the run and puts
# it back), and the Debian packages nfdump and pmacct (installed if absent).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROTO=${1:-v9}
RATES=${RATES:-1000000,2000000,4000000,6000000,8000000,9600000,12000000}
COLLECTORS=${COLLECTORS:-tollgate,nfcapd,nfacctd-tuned}
DURATION=${DURATION:-10}
REPEATS=${REPEATS:-3}
PORT=${PORT:-29055}
SHARED=${SHARED:-}
if [ -z "$SHARED" ]; then
    for c in "$ROOT/../shared/bench" /work/shared/bench; do
        if [ -f "$c/collector_ingest.py" ]; then SHARED=$c; break; fi
    done
fi
[ -n "$SHARED" ] || { echo "shared bench harness not found; set SHARED" >&2; exit 2; }

need() { command -v "$1" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null; }
need nfcapd nfdump
need nfacctd pmacct

cargo build --release -q -p tollgate --manifest-path "$ROOT/Cargo.toml"
TG=${CARGO_TARGET_DIR:-$ROOT/target}/release/tollgate
WORK=$(mktemp -d)
OLD_RMEM=$(sysctl -n net.core.rmem_max)
cleanup() { sysctl -qw net.core.rmem_max="$OLD_RMEM"; rm -rf "$WORK"; }
trap cleanup EXIT
sysctl -qw net.core.rmem_max=33554432

python3 "$ROOT/bench/flow_policy.py" --listen "127.0.0.1:$PORT" > "$WORK/policy.toml"
"$TG" check -c "$WORK/policy.toml" >/dev/null

export TOLLGATE="$TG"
python3 "$SHARED/collector_ingest.py" --collectors "$COLLECTORS" --proto "$PROTO" \
    --rates "$RATES" --duration "$DURATION" --repeats "$REPEATS" --port "$PORT" \
    --custom-name tollgate \
    --custom-start "$TG flows collect -c $WORK/policy.toml --state-dir {dir} --interval 1s" \
    --custom-count "python3 $ROOT/bench/flow_count.py {dir}" \
    --custom-count-after-stop --custom-stop-signal TERM
