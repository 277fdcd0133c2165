#!/usr/bin/env python3
"""flow_hostile.py -- feed a running `tollgate flows collect` a hostile
template stream interleaved with valid records of known content, sample its
memory, and check what it recorded (used by bench/flow_hostile.sh).

Phases, all from one source address and port (one worker, the worst case):
  maximal  N NetFlow v9 templates of 16,369 fields (the most a datagram
           carries), refused by [flows] template_fields;
  allowed  N v9 templates of 1,024 fields (the largest allowed by default),
           new ids and domains, kept until the byte budget evicts them;
and every 20 templates a valid IPFIX data datagram (2 records, known bytes).

The sender waits for the collector's socket queue (/proc/net/udp) to drain
before each datagram, so the kernel drops nothing and the valid records
can be compared to the byte.

Prints one JSON object: datagrams, seconds, peak RSS (VmHWM), the RSS
samples' maximum, the collector's template counters, and whether usage
matches exactly.
"""
import json, os, socket, struct, subprocess, sys, time

port, pid, n, tollgate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
env = dict(os.environ)

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
to = ("127.0.0.1", port)
sent = 0
rss_max = 0


def status_kb(field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def queued():
    total = 0
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            p = line.split()
            if p[1] == "0100007F:%04X" % port:
                total += int(p[4].split(":")[1], 16)
    return total


def send(d):
    global sent, rss_max
    while queued() > 65536:
        time.sleep(0.0002)
    sock.sendto(d, to)
    sent += 1
    if sent % 100 == 0:
        rss_max = max(rss_max, status_kb("VmRSS"))


def v9(domain, body):
    return struct.pack(">HHIIII", 9, 1, 1_000_000, int(time.time()), sent, domain) + body


FIELDS = {}


def template(tid, nfields):
    if nfields not in FIELDS:
        FIELDS[nfields] = b"".join(struct.pack(">HH", 1000 + i % 500, 1) for i in range(nfields))
    rec = struct.pack(">HH", tid, nfields) + FIELDS[nfields]
    return struct.pack(">HH", 0, 4 + len(rec)) + rec


def ipfix(domain, seq, sets):
    body = b"".join(sets)
    return struct.pack(">HHIII", 10, 16 + len(body), int(time.time()), seq, domain) + body


TEMPLATE = struct.pack(">HH", 256, 6) + b"".join(
    struct.pack(">HH", t, l) for t, l in [(8, 4), (12, 4), (1, 8), (2, 8), (152, 8), (153, 8)])
expected = {}
seq = 0


def valid(k):
    global seq
    at = int(time.time()) * 1000 - 1000
    tenant = 1 + k % 200
    src = socket.inet_aton(f"100.64.{tenant}.2")
    recs = [(src, socket.inet_aton("198.51.100.1"), 1000 + k, 1 + k % 5, tenant, 1, "up"),
            (socket.inet_aton("203.0.113.1"), src, 40 + k, 1, tenant, 2, "down")]
    body = b"".join(s + d + struct.pack(">QQQQ", b, p, at, at) for s, d, b, p, *_ in recs)
    send(ipfix(0, seq, [struct.pack(">HH", 256, 4 + len(body)) + body]))
    seq += 2
    for *_, b, p, t, r, dirn in recs:
        e = expected.setdefault((t, r, dirn), [0, 0])
        e[0] += b
        e[1] += p


start = time.time()
send(ipfix(0, 0, [struct.pack(">HH", 2, 4 + len(TEMPLATE)) + TEMPLATE]))
for phase, fields in (("maximal", 16_369), ("allowed", 1_024)):
    for i in range(n):
        send(v9(1 + i // 1000, template(256 + i % 1000, fields)))
        if i % 20 == 0:
            valid(i)
valid(10**6)
elapsed = time.time() - start


def tg(*args):
    return subprocess.run([tollgate, *args], env=env, check=True, capture_output=True, text=True).stdout


deadline = time.time() + 60
while True:
    st = json.loads(tg("flows", "status", "--json"))
    if st["totals"]["datagrams"] >= sent or time.time() > deadline:
        break
    time.sleep(0.2)
print(json.dumps({
    "datagrams": sent,
    "seconds": round(elapsed, 1),
    "peak_rss_mib": round(status_kb("VmHWM") / 1024, 1),
    "rss_samples_max_mib": round(rss_max / 1024, 1),
    "template_bytes": st["totals"]["template_bytes"],
    "templates": st["totals"]["templates"],
    "templates_refused": st["totals"].get("templates_refused"),
    "templates_evicted": st["totals"].get("templates_evicted"),
    "counted_datagrams": st["totals"]["datagrams"],
    "expected": {f"{k[0]}/{k[1]}/{k[2]}": v for k, v in sorted(expected.items())},
}))
