#!/usr/bin/env bash
# api_usage.sh -- one tenant's month of usage through the HTTP API, and the
# same query straight on the store, in one run (issue 13's bench).
#
# The store is the history bench's: 10,000 tenants × 4 realms × 2
# directions × 62 days of 5-minute samples (1.43 billion), built once by
# `cargo bench -p history --bench store` into $API_BENCH_DB (about 22 GB and
# 15 minutes the first time). Then, side by side:
#   1. `cargo bench -p api --bench usage`: what the handler computes (the
#      month's series at its default resolution and its totals), straight
#      on the store, per call;
#   2. the real router (crates/api/examples/bench_site.rs) over the same
#      store, loaded by wrk with keep-alive connections asking
#      GET /api/v1/tenants/{id}/usage?period=2026-11 (a whole closed month)
#      for tenants spread
#      over the whole range, with a read token.
# The last lines are RESULT lines: p50/p99 and requests/s of the API, the
# store query's median, and the API's overhead.
#
# Usage: bench/api_usage.sh   (apt-get install wrk)
# Env:   API_BENCH_DB, API_BENCH_TENANTS (10000), SECONDS_TO_RUN (20),
#        CONNECTIONS (8)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DB=${API_BENCH_DB:-/var/tmp/tg-bench/history-10k-62d.sqlite}
N=${API_BENCH_TENANTS:-10000}
RUN=${SECONDS_TO_RUN:-20}
CONN=${CONNECTIONS:-8}
ADDR=127.0.0.1:9299
command -v wrk >/dev/null || { echo "install wrk first: apt-get install wrk" >&2; exit 1; }
cd "$ROOT"
if [[ ! -f $DB ]]; then
  mkdir -p "$(dirname "$DB")"
  echo "building the store $DB (once)..." >&2
  HISTORY_BENCH_TENANTS=$N HISTORY_BENCH_DAYS=62 HISTORY_BENCH_DB=$DB \
    cargo bench -p history --bench store -- tenant_month >&2
fi
cargo build --release -q -p api --example bench_site
W=$(mktemp -d)
PID=""
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

echo "== straight on the store (divan, the handler's query-layer calls)" >&2
API_BENCH_DB=$DB API_BENCH_TENANTS=$N cargo bench -q -p api --bench usage 2>&1 | tee "$W/divan"

echo "== through the API (wrk, $CONN connections, ${RUN}s)" >&2
"$ROOT/target/release/examples/bench_site" "$DB" "$ADDR" "$N" > "$W/token" 2>"$W/site.log" &
PID=$!
for _ in $(seq 100); do [[ -s $W/token ]] && break; sleep 0.1; done
TOKEN=$(head -1 "$W/token")
cat > "$W/usage.lua" <<LUA
local i = 0
request = function()
  i = (i + 7919) % ($N - 1)
  return wrk.format("GET", "/api/v1/tenants/" .. (i + 1) .. "/usage?period=2026-11", { ["Authorization"] = "Bearer $TOKEN" })
end
done = function(summary, latency, requests)
  io.write(string.format("wrk: %d requests, %d errors (status), p50 %.2f ms, p99 %.2f ms, %.0f req/s\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6)))
end
LUA
# Every answer must be a 200 with the month in it.
curl -sf -H "Authorization: Bearer $TOKEN" "http://$ADDR/api/v1/tenants/7/usage?period=2026-11" | grep -q '"label":"2026-11"'
# One connection: each request's own latency, to set beside the store's.
wrk -t1 -c1 -d"${RUN}s" --latency -s "$W/usage.lua" "http://$ADDR" | tee "$W/wrk1"
# Several: what the two cores serve together.
wrk -t2 -c"$CONN" -d"${RUN}s" --latency -s "$W/usage.lua" "http://$ADDR" | tee "$W/wrkn"
grep -E "VmHWM" "/proc/$PID/status" | sed 's/^/api server /'
# divan's columns: fastest, slowest, median, mean; take the median.
STORE_MS=$(grep -E "tenant_month_usage" "$W/divan" | awk '{n=0; for (i=1;i<=NF;i++) if ($i ~ /^[0-9.]+$/ && $(i+1) ~ /^(ns|ms|µs|us|s)$/) {n++; if (n==3) {v=$i; u=$(i+1)}} } END { if (u=="µs"||u=="us") v=v/1000; if (u=="ns") v=v/1e6; if (u=="s") v=v*1000; print v }')
read -r P50 P99 RPS1 ERR1 < <(awk '/^wrk:/ {print $8, $11, $13, $4}' "$W/wrk1")
read -r P50N P99N RPSN ERRN < <(awk '/^wrk:/ {print $8, $11, $13, $4}' "$W/wrkn")
echo "RESULT api_usage c=1 p50_ms=$P50 p99_ms=$P99 req_per_s=$RPS1 errors=$ERR1 store_median_ms=$STORE_MS overhead=$(awk -v a="$P50" -v s="$STORE_MS" 'BEGIN { if (s > 0) printf "%.0f%%", 100 * (a - s) / s; else print "n/a" }')"
echo "RESULT api_usage c=$CONN p50_ms=$P50N p99_ms=$P99N req_per_s=$RPSN errors=$ERRN"
