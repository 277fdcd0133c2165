#!/usr/bin/env python3
"""plan_csv_to_policy.py -- turn tcgen.py's tenant plan CSV into a tollgate policy.

tc_apply.sh (../shared/bench) times a product building "the same tree" as
its tc -batch baseline: one HTB class per tenant with the CSV's rate/ceil,
under one parent per 100 tenants, classified by the tenant's IPv4 /32.
This writes that as a tollgate policy: router mode with the LAN side on
DEV (the shaped device in the bench namespace) and the uplink on its peer.
tollgate shapes both directions, so it builds two classes per tenant where
the baseline builds one.

With --realms, two realms are declared (national: 192.0.2.0/24 and
198.51.100.0/24; international: everything else), so every packet also
takes the realm lookup and every tenant gets a class per realm.

With --classifier ebpf (or nftables), the site says which classifier
puts packets into their classes.

With --shape-on interface (or ifb), the site says where the HTB trees
live: tollgate's IFBs (the default) or the shaped device's own root qdisc.

With --counters, a [guard] with `[guard.capture] source = "ebpf"` makes the
eBPF classifier count per local address too (thresholds out of reach: the
cost of counting is what is measured).

With --rtt, `[latency] tcp_rtt = true` makes the eBPF classifier match TCP
timestamps (passive RTT) too.

Usage: plan_csv_to_policy.py PLAN.csv DEV PEER [--realms] [--classifier KIND] [--shape-on WHERE] [--counters] [--rtt] > policy.toml
"""
import csv
import sys

plan, dev, peer = sys.argv[1], sys.argv[2], sys.argv[3]
realms = "--realms" in sys.argv[4:]
counters = "--counters" in sys.argv[4:]
rtt = "--rtt" in sys.argv[4:]
classifier = None
if "--classifier" in sys.argv[4:]:
    classifier = sys.argv[sys.argv.index("--classifier") + 1]
shape_on = None
if "--shape-on" in sys.argv[4:]:
    shape_on = sys.argv[sys.argv.index("--shape-on") + 1]
rows = list(csv.DictReader(open(plan)))
parents = sorted({r["parent"] for r in rows}, key=lambda p: int(p.split(":")[1], 16))
pid = {p: i + 1 for i, p in enumerate(parents)}
out = [
    "[site]",
    'mode = "router"',
    f'uplink = "{peer}"',
    f'lan = "{dev}"',
    'capacity = { down = "100gbit", up = "100gbit" }',
] + ([f'classifier = "{classifier}"'] if classifier else []) + (
    [f'shape_on = "{shape_on}"'] if shape_on else []
) + [
    "",
] + ([
    "[realms]",
    'default = "international"',
    "",
    "[realms.national]",
    "id = 1",
    'prefixes = ["192.0.2.0/24", "198.51.100.0/24"]',
    "",
    "[realms.international]",
    "id = 2",
    "",
] if realms else []) + [
    "[plans.base]",
    'down = { rate = "10mbit", ceil = "20mbit" }',
    'up = { rate = "10mbit", ceil = "20mbit" }',
    "",
]
for p in parents:
    out += [
        "[[parents]]",
        f'name = "p{pid[p]}"',
        f"id = {pid[p]}",
        'down = { rate = "40gbit", ceil = "100gbit" }',
        'up = { rate = "40gbit", ceil = "100gbit" }',
        "",
    ]
for r in rows:
    shape = f'{{ rate = "{r["rate"]}", ceil = "{r["ceil"]}" }}'
    out += [
        "[[tenants]]",
        f'id = {int(r["tenant"]) + 1}',
        f'name = "t{r["tenant"]}"',
        'plan = "base"',
        f'parent = "p{pid[r["parent"]]}"',
        f'prefixes = ["{r["ipv4"]}/32"]',
        f"down = {shape}",
        f"up = {shape}",
        "",
    ]
if rtt:
    # Passive TCP RTT in the eBPF classifier (bench/rtt_cost.sh).
    out += ["[latency]", "tcp_rtt = true", ""]
if counters:
    out += [
        "[guard]",
        "",
        "[guard.capture]",
        'source = "ebpf"',
        "",
        "[guard.thresholds]",
        "pps_in = 1000000000",
        "",
        "[[guard.ladder]]",
        'rung = "notify"',
        'hold = "1m"',
        'script = "/bin/true"',
        "",
    ]
print("\n".join(out))
