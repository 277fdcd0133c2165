// SPDX-License-Identifier: Apache-2.0
//
// Passive TCP round-trip times (the pping method), included by
// classify.c and called once per packet that has a tenant, on the
// packet's first pass through its hook (before the shaper's queue), when
// F_RTT is set ([latency] tcp_rtt = true).
//
// On every TCP segment with a timestamp option the program remembers
// (flow, TSval) -> now, and on the reverse flow looks up (flow, TSecr):
// a hit is a round trip from this hook to the far end and back. A SYN is
// remembered by its sequence number and matched by the SYN-ACK's ack - 1
// (so a handshake without timestamps still gives one sample).
//
// Never a sample outside the real range: a sample is always the time
// between two packets this program saw, at most RTT_MAX_NS apart. A TSval
// is remembered only when it is newer (serial arithmetic, RFC 7323) than
// every TSval seen on its flow, so a TSval seen again, an older
// (reordered) one and zero are never timed; a TSecr of zero is never
// looked up; an entry is deleted when it is matched, so a duplicate ACK
// gives nothing; an entry older than RTT_MAX_NS gives nothing (and the
// LRU forgets what is never answered).
//
// At most one TSval (or SYN) is remembered per flow and direction per
// RTT_EVERY_NS, so at most one sample per flow and direction comes out of
// each interval. Samples and retransmissions leave through the ring
// buffer tg_rtt_events; what it could not take is counted in
// tg_rtt_stats.
//
// Retransmissions: a data segment whose end is not beyond the highest
// sequence number seen on its flow (RFC 793 serial arithmetic) was sent
// before: counted as a retransmission of the sending side (reordering
// before this hook counts too).

#define RTT_EVERY_NS 100000000ULL   // 100 ms
#define RTT_MAX_NS 10000000000ULL   // 10 s
#define RTT_SEEN_FLAG 0x20000000u   // on the mark: handled on this packet's first pass
#define F_RTT 16

// One direction of a TCP connection, as the packet carries it.
struct rtt_flow {
	__u8 src[16], dst[16];
	__u16 sport, dport;
	__u8 v6;
	__u8 pad[3];
};

// The state of one direction: the newest TSval seen, when one was last
// remembered, the highest sequence number sent.
struct rtt_flow_state {
	__u64 remembered_ns;
	__u32 last_tsval;
	__u32 snd_nxt;
	__u8 have_ts, have_seq;
	__u8 pad[6];
};

#define RTT_KEY_TS 0
#define RTT_KEY_SYN 1

struct rtt_key {
	struct rtt_flow flow; // the flow of the remembered packet
	__u32 id;             // its TSval, or the SYN's sequence number
	__u32 kind;           // RTT_KEY_TS or RTT_KEY_SYN
};

#define RTT_EV_SAMPLE 0
#define RTT_EV_RETRANSMIT 1

// What the reader gets (keep in step with crates/bpf-classify/src/rtt.rs).
struct rtt_event {
	__u64 rtt_ns;  // 0 for a retransmission
	__u32 tenant;
	__u16 realm;
	__u8 dir;      // of the timed (or retransmitted) packet: 1 up (from the tenant), 0 down
	__u8 kind;     // RTT_EV_*
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct rtt_flow);
	__type(value, struct rtt_flow_state);
} tg_rtt_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct rtt_key);
	__type(value, __u64);
} tg_rtt_ts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} tg_rtt_events SEC(".maps");

// Per CPU: [0] events the ring buffer could not take, [1] samples sent,
// [2] retransmissions sent.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} tg_rtt_stats SEC(".maps");

static __always_inline void rtt_stat(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&tg_rtt_stats, &i);
	if (v)
		*v += 1;
}

static __always_inline void rtt_emit(__u32 tenant, __u32 realm, int up, __u8 kind, __u64 rtt)
{
	struct rtt_event *e = bpf_ringbuf_reserve(&tg_rtt_events, sizeof(*e), 0);
	if (!e) {
		rtt_stat(0);
		return;
	}
	e->rtt_ns = rtt;
	e->tenant = tenant;
	e->realm = realm;
	e->dir = up ? 1 : 0;
	e->kind = kind;
	bpf_ringbuf_submit(e, 0);
	rtt_stat(kind == RTT_EV_SAMPLE ? 1 : 2);
}

// a after b, modulo 2^32
static __always_inline int rtt_after(__u32 a, __u32 b)
{
	return (__s32)(a - b) > 0;
}

// Reads the timestamp option of the TCP header at `l4off`; returns 1 and
// sets tsval/tsecr when there is one. Each option is read from the packet
// by the helper (its offset is checked at run time), so no variable
// offset into the stack or packet needs the verifier's proof.
static __always_inline int rtt_timestamps(struct __sk_buff *skb, __u32 l4off, __u32 doff,
					  __u32 *tsval, __u32 *tsecr)
{
	if (doff <= 20 || doff > 60)
		return 0;
	__u32 len = doff - 20, base = l4off + 20, i = 0;
	for (int n = 0; n < 12; n++) {
		if (i >= len)
			return 0;
		__u8 kl[2] = {};
		if (bpf_skb_load_bytes(skb, base + i, kl, i + 2 <= len ? 2 : 1) < 0)
			return 0;
		if (kl[0] == 0) // end of options
			return 0;
		if (kl[0] == 1) { // no-op
			i++;
			continue;
		}
		if (kl[1] < 2 || i + kl[1] > len)
			return 0;
		if (kl[0] == 8 && kl[1] == 10) {
			__u8 v[8];
			if (bpf_skb_load_bytes(skb, base + i + 2, v, 8) < 0)
				return 0;
			*tsval = (__u32)v[0] << 24 | (__u32)v[1] << 16 | (__u32)v[2] << 8 | v[3];
			*tsecr = (__u32)v[4] << 24 | (__u32)v[5] << 16 | (__u32)v[6] << 8 | v[7];
			return 1;
		}
		i += kl[1];
	}
	return 0;
}

// Looks up what `key` remembers, deletes it, and emits a sample when it
// is younger than RTT_MAX_NS.
static __always_inline void rtt_match(struct rtt_key *key, __u64 now, __u32 tenant,
				      __u32 realm, int up)
{
	__u64 *then = bpf_map_lookup_elem(&tg_rtt_ts, key);
	if (!then)
		return;
	__u64 t = *then;
	bpf_map_delete_elem(&tg_rtt_ts, key);
	if (t >= now || now - t > RTT_MAX_NS)
		return;
	// The timed packet went the other way.
	rtt_emit(tenant, realm, !up, RTT_EV_SAMPLE, now - t);
}

// p: the parsed packet (TCP, first fragment); l4off: its TCP header;
// up: the tenant is the source.
static __always_inline void rtt_track(struct __sk_buff *skb, struct pkt *p, __u32 l4off,
				      __u32 tenant, __u32 realm, int up)
{
	__u8 hdr[20];
	if (bpf_skb_load_bytes(skb, l4off, hdr, 20) < 0)
		return;
	__u32 doff = (hdr[12] >> 4) * 4;
	// A header that claims more than the packet holds is no segment any
	// stack would take: nothing in it is read.
	if (doff < 20 || l4off + doff > skb->len)
		return;
	__u8 flags = hdr[13];
	__u32 seq = (__u32)hdr[4] << 24 | (__u32)hdr[5] << 16 | (__u32)hdr[6] << 8 | hdr[7];
	__u32 ack = (__u32)hdr[8] << 24 | (__u32)hdr[9] << 16 | (__u32)hdr[10] << 8 | hdr[11];
	__u64 now = bpf_ktime_get_ns();
	realm &= 0xffff;

	struct rtt_key key = {};
	__builtin_memcpy(key.flow.src, p->src, 16);
	__builtin_memcpy(key.flow.dst, p->dst, 16);
	key.flow.sport = p->sport;
	key.flow.dport = p->dport;
	key.flow.v6 = p->v6;
	// The reverse flow, for matching.
	struct rtt_key rev = {};
	__builtin_memcpy(rev.flow.src, p->dst, 16);
	__builtin_memcpy(rev.flow.dst, p->src, 16);
	rev.flow.sport = p->dport;
	rev.flow.dport = p->sport;
	rev.flow.v6 = p->v6;

	__u32 tsval = 0, tsecr = 0;
	int ts = rtt_timestamps(skb, l4off, doff, &tsval, &tsecr);

	// Match first: this packet answers something the other way.
	if ((flags & 0x12) == 0x12) { // SYN-ACK answers a SYN
		rev.id = ack - 1;
		rev.kind = RTT_KEY_SYN;
		rtt_match(&rev, now, tenant, realm, up);
	} else if (ts && tsecr != 0 && (flags & 0x10)) {
		rev.id = tsecr;
		rev.kind = RTT_KEY_TS;
		rtt_match(&rev, now, tenant, realm, up);
	}
	if (flags & 0x04) // RST: nothing to time
		return;

	struct rtt_flow_state *st = bpf_map_lookup_elem(&tg_rtt_flows, &key.flow);
	if (!st) {
		struct rtt_flow_state zero = {};
		bpf_map_update_elem(&tg_rtt_flows, &key.flow, &zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&tg_rtt_flows, &key.flow);
		if (!st)
			return;
	}

	// Retransmissions: data that ends at or before what was sent.
	__u32 payload = p->ip_len;
	__u32 iphl = p->v6 ? 40 : p->ihl;
	if (payload > iphl + doff)
		payload -= iphl + doff;
	else
		payload = 0;
	if (payload) {
		__u32 end = seq + payload;
		if (st->have_seq && !rtt_after(end, st->snd_nxt))
			rtt_emit(tenant, realm, up, RTT_EV_RETRANSMIT, 0);
		else {
			st->snd_nxt = end;
			st->have_seq = 1;
		}
	}

	int due = now - st->remembered_ns >= RTT_EVERY_NS;
	if ((flags & 0x12) == 0x02) { // a SYN: remembered by its sequence number
		if (due) {
			key.id = seq;
			key.kind = RTT_KEY_SYN;
			bpf_map_update_elem(&tg_rtt_ts, &key, &now, BPF_NOEXIST);
			st->remembered_ns = now;
		}
		if (ts && tsval) {
			st->last_tsval = tsval;
			st->have_ts = 1;
		}
		return;
	}
	if (!ts || tsval == 0)
		return;
	// Only the first packet to carry a TSval is timed: a later one with
	// the same TSval may be echoed for an earlier one.
	int newer = !st->have_ts || rtt_after(tsval, st->last_tsval);
	if (!newer)
		return;
	st->last_tsval = tsval;
	st->have_ts = 1;
	if (!due)
		return;
	key.id = tsval;
	key.kind = RTT_KEY_TS;
	if (bpf_map_update_elem(&tg_rtt_ts, &key, &now, BPF_NOEXIST) == 0)
		st->remembered_ns = now;
}

// Called by classify() once the packet's tenant and realm are known.
// `seen`: the mark said the packet was handled already (its second pass,
// after the IFB sent it back through the hook). Returns the mark bit to
// keep on the packet.
static __always_inline __u32 rtt_hook(struct __sk_buff *skb, struct pkt *p, __u32 flags,
				      __u32 seen, __u32 tenant, __u32 realm, int up)
{
	if (!(flags & F_RTT))
		return 0;
	if (!seen && p->proto == IPPROTO_TCP && p->l4)
		rtt_track(skb, p, p->l4off, tenant, realm, up);
	return RTT_SEEN_FLAG;
}
