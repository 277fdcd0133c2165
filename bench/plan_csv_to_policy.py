#!/usr/bin/env python3
"""plan_csv_to_policy.py -- turn tcgen.py's tenant plan CSV into a tollgate policy.

tc_apply.sh (../shared/bench) times a product building "the same tree" as
its tc -batch baseline: one HTB class per tenant with the CSV's rate/ceil,
under one parent per 100 tenants, classified by the tenant's IPv4 /32.
This writes that as a tollgate policy: router mode with the LAN side on
DEV (the shaped device in the bench namespace) and the uplink on its peer.
tollgate shapes both directions, so it builds two classes per tenant where
the baseline builds one.

Usage: plan_csv_to_policy.py PLAN.csv DEV PEER > policy.toml
"""
import csv
import sys

plan, dev, peer = sys.argv[1], sys.argv[2], sys.argv[3]
rows = list(csv.DictReader(open(plan)))
parents = sorted({r["parent"] for r in rows}, key=lambda p: int(p.split(":")[1], 16))
pid = {p: i + 1 for i, p in enumerate(parents)}
out = [
    "[site]",
    'mode = "router"',
    f'uplink = "{peer}"',
    f'lan = "{dev}"',
    'capacity = { down = "100gbit", up = "100gbit" }',
    "",
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
print("\n".join(out))
