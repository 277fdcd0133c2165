#!/usr/bin/env python3
"""bench/flow_count.py DIR - what a stopped `tollgate flows collect` recorded.

Prints `flows=N bytes=N packets=N` for collector_ingest.py's custom
collector: flows are the records the collector attributed (its status
file), bytes and packets are what the history store holds for every realm
and direction (`tollgate realms --json`), so the figure proves the whole
path, socket to store.
"""
import json
import os
import subprocess
import sys

d = sys.argv[1]
tg = os.environ.get("TOLLGATE", "tollgate")
with open(os.path.join(d, "flows-status.json")) as f:
    st = json.load(f)
out = subprocess.run([tg, "realms", "--json", "--since", "2000-01-01", "--state-dir", d],
                     capture_output=True, text=True, check=True).stdout
realms = json.loads(out)["realms"]
b = sum(r["bytes_to"] + r["bytes_from"] for r in realms)
p = sum(r["packets_to"] + r["packets_from"] for r in realms)
print("flows=%d bytes=%d packets=%d" % (st["totals"]["attributed"], b, p))
