#!/usr/bin/env bash
# policy_memory.sh N... -- peak memory of `check` and `plan --offline` on
# N-tenant policies (issue 12, item 17: a 100,000-tenant policy checks and
# plans in under 1 GB).
#
# Each policy is router mode with two realms (so every tenant has a class
# per realm and direction), one parent per 100 tenants and one /32 per
# tenant from 100.64.0.0/10. The real binary runs under GNU time; the
# figure is its maximum resident set (what the kernel charged it), and the
# per-tenant figure is that peak over N. No kernel state is read or
# changed: `plan --offline` compiles and prints the whole plan.
#
# Usage: bench/policy_memory.sh 10000 100000   (cargo build --release -p tollgate)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
TG=${TOLLGATE:-$ROOT/target/release/tollgate}
[[ -x $TG ]] || { echo "build first: cargo build --release -p tollgate" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "install GNU time first: apt-get install time" >&2; exit 1; }
(( $# > 0 )) || { echo "usage: policy_memory.sh N..." >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

policy() {
  python3 - "$1" <<'PY'
import sys
n = int(sys.argv[1])
out = ['[site]', 'mode = "router"', 'uplink = "v1"', 'lan = "v0"',
       'capacity = { down = "100gbit", up = "100gbit" }', '',
       '[realms]', 'default = "international"', '',
       '[realms.national]', 'id = 1', 'prefixes = ["192.0.2.0/24", "198.51.100.0/24"]', '',
       '[realms.international]', 'id = 2', '',
       '[plans.base]', 'down = { rate = "10mbit", ceil = "20mbit" }',
       'up = { rate = "10mbit", ceil = "20mbit" }', '']
for p in range(1, n // 100 + 2):
    out += ['[[parents]]', f'name = "p{p}"', f'id = {p}',
            'down = { rate = "900mbit", ceil = "100gbit" }',
            'up = { rate = "900mbit", ceil = "100gbit" }', '']
for i in range(n):
    a = (100 << 24) | (64 << 16) | (i + 1)
    ip = f'{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}'
    out += ['[[tenants]]', f'id = {i + 1}', f'name = "t{i}"', 'plan = "base"',
            f'parent = "p{i // 100 + 1}"', f'prefixes = ["{ip}/32"]', '']
print('\n'.join(out))
PY
}

measure() { # LABEL N COMMAND...
  local label=$1 n=$2; shift 2
  /usr/bin/time -f "%M %e" -o "$W/time" "$@" > /dev/null 2> "$W/err" || {
    echo "$label failed:" >&2; cat "$W/err" >&2; exit 1; }
  read -r kib secs < "$W/time"
  awk -v l="$label" -v n="$n" -v k="$kib" -v s="$secs" 'BEGIN {
    printf "RESULT %-6s tenants=%d peak_rss_mib=%.0f bytes_per_tenant=%.0f seconds=%.2f\n",
      l, n, k / 1024, k * 1024 / n, s }'
}

for n in "$@"; do
  policy "$n" > "$W/p$n.toml"
  measure check "$n" "$TG" check -c "$W/p$n.toml"
  measure plan "$n" "$TG" plan --offline --format json -c "$W/p$n.toml"
done
