// SPDX-License-Identifier: Apache-2.0
//
// tollgate's classifier: one tc program per hook that writes the HTB class
// into skb->priority and the class's shard major into skb->mark, so that
// the IFB's root HTB (its classic-BPF MarkToClass filter) steers the
// packet into its shard and the shard's HTB picks the class from
// skb->priority directly. It replaces the nftables chains of the nft path
// (crates/compiler/src/tree/classify.rs) and mirrors them rule for rule.
//
// The programs run in cls_bpf's classic (not direct-action) mode: they
// return -1 ("matched, use the filter's class") so that the filter's own
// mirred action redirects the packet to the IFB. bpf_redirect() cannot be
// used for that: the IFB drops packets whose skb_iif is 0 (locally sent)
// and sends the others back out of skb_iif, which bpf_redirect does not set
// to the device the packet was leaving (mirred does).
//
// Maps (the names are what linux-dataplane finds them by):
//   tg_tenants4/6  LPM trie: local address -> tenant id
//   tg_realms4/6   LPM trie: remote address -> realm id (the compiler's
//                  flattened realm table)
//   tg_vifs        hash: ifindex -> tenant id (hypervisor downloads)
//   tg_classes     hash: tenant id x realm -> the realm's class (major:minor,
//                  4-aligned; the band is OR-ed into the low two bits)
//   tg_config      array of u32 words: flags, default realm and the band
//                  rules (layout in crates/bpf-classify/src/lib.rs)
//   tg_addrs       LRU per-CPU hash: local address x direction -> packet
//                  and byte counters for the DDoS guard, written only when
//                  F_COUNT is set ([guard.capture] source = "ebpf"); read by
//                  linux-dataplane/src/addr_counters.rs, never by the plan
//   tg_victims4/6  LPM trie: way . local address -> the rate (kbit/s) of
//                  the guard's `throttle` rung holding it; its class is
//                  in tg_config's throttle words. Written by the guard
//                  (crates/tollgate/src/guard_rungs.rs), never by the plan
//   tg_rtt_*       passive TCP RTT (rtt.h): flows, remembered timestamps,
//                  the ring buffer of samples, its drop counter; written
//                  only when F_RTT is set ([latency] tcp_rtt = true)

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct lpm4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm6 {
	__u32 prefixlen;
	__u8 addr[16];
};

struct tenant_realm {
	__u32 tenant;
	__u32 realm;
};

#define CFG_WORDS 128

// The throttle rung's victims: the key data is way (0: in, the local
// address is the destination; 1: out), three zero bytes, the address; the
// prefix length counts the first 32 bits (keep in step with
// crates/bpf-classify/src/throttle.rs).
struct vkey4 {
	__u32 prefixlen;
	__u8 way;
	__u8 pad[3];
	__u8 addr[4];
};

struct vkey6 {
	__u32 prefixlen;
	__u8 way;
	__u8 pad[3];
	__u8 addr[16];
};

// The guard's per-address counters (keep in step with
// crates/bpf-classify/src/counters.rs). An IPv4 address fills the first
// four bytes of `addr`, the rest is zero.
struct addr_key {
	__u8 addr[16];
	__u8 v6;
	__u8 dir; // 0: in (the local address is the destination), 1: out
	__u8 pad[2];
};

struct addr_counts {
	__u64 packets, bytes; // bytes: the IP length, as the AF_PACKET capture
	__u64 tcp_packets, tcp_bytes;
	__u64 udp_packets, udp_bytes;
	__u64 icmp_packets, icmp_bytes;
	__u64 tcp_syn; // SYN without ACK
	__u64 fragments, fragment_bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1048576);
	__type(key, struct lpm4);
	__type(value, __u32);
} tg_tenants4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 262144);
	__type(key, struct lpm6);
	__type(value, __u32);
} tg_tenants6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 2097152);
	__type(key, struct lpm4);
	__type(value, __u32);
} tg_realms4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 524288);
	__type(key, struct lpm6);
	__type(value, __u32);
} tg_realms6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u32);
} tg_vifs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4194304);
	__type(key, struct tenant_realm);
	__type(value, __u32);
} tg_classes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CFG_WORDS);
	__type(key, __u32);
	__type(value, __u32);
} tg_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct vkey4);
	__type(value, __u32);
} tg_victims4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct vkey6);
	__type(value, __u32);
} tg_victims6 SEC(".maps");

// LRU: at the bound the least recently counted address is dropped to make
// room (its counts since the last read are lost; the reader takes a
// counter that went down as a fresh start). Preallocated (LRU maps must
// be): max_entries x CPUs x 88 bytes, 11.5 MB on 2 CPUs; the loader may
// shrink or grow it (linux-dataplane sets it before load).
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct addr_key);
	__type(value, struct addr_counts);
} tg_addrs SEC(".maps");

// Config word indexes: keep in step with crates/bpf-classify/src/lib.rs.
#define CFG_FLAGS 0
#define CFG_DEFAULT_REALM 1
#define CFG_DSCP 2      // 2 words per band: interactive at 2, bulk at 4
#define CFG_PROTO 6     // 8 words per band: interactive at 6, bulk at 14
#define CFG_SMALL_ACK 22 // per band: length + 1, 0 when off
#define CFG_PORTS 32    // 16 ranges x 2 words per band: interactive 32, bulk 64
#define MAX_RANGES 16
#define CFG_THROTTLE 96 // 16 x (rate in kbit/s, its class); a rate of 0 ends
#define MAX_THROTTLE 16

#define F_BANDS 1
#define F_SKIP_BROADCAST 2
#define F_SKIP_MULTICAST 4
#define F_COUNT 8 // count per local address into tg_addrs

// Set on the mark by the VM-ingress program: the packet is already shaped
// as its VM's upload, so the uplink's program lets it pass.
#define SHAPED_FLAG 0x80000000u
// Set on the mark once a packet is counted (F_COUNT only): the IFB sends
// a redirected packet back through the same hook, where the program runs
// again (only the filter's actions are skipped), and it must not count
// twice. The IFB root's MarkToClass filter reads the mark's low 16 bits.
#define COUNTED_FLAG 0x40000000u

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ICMP 1
#define IPPROTO_ICMPV6 58
#define IPPROTO_FRAGMENT 44

// tcp flags byte: FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10
#define TCP_FSRA 0x17
#define TCP_ACK 0x10

static __always_inline __u32 cfg(__u32 i)
{
	__u32 *v = bpf_map_lookup_elem(&tg_config, &i);
	return v ? *v : 0;
}

struct pkt {
	__u8 v6;
	__u8 proto;  // transport protocol, 0 when unknown or a later fragment
	__u8 dscp;
	__u8 l4;     // ports and tcp flags were read
	__u8 tcp_flags;
	__u8 cproto; // the protocol for the counters, fragments included
	__u8 frag;   // any fragment (first or later)
	__u16 ip_len;
	__u16 sport, dport;
	__u8 src[16], dst[16];
	__u8 ihl;    // IPv4 header length (rtt.h)
	__u16 l4off; // the transport header's offset (rtt.h)
};

static __always_inline int band_matches(struct pkt *p, __u32 len, int b)
{
	__u32 w;
	w = cfg(CFG_DSCP + 2 * b + (p->dscp >> 5));
	if (w & (1u << (p->dscp & 31)))
		return 1;
	if (p->proto) {
		w = cfg(CFG_PROTO + 8 * b + (p->proto >> 5));
		if (w & (1u << (p->proto & 31)))
			return 1;
	}
	if (p->l4) {
		for (int i = 0; i < MAX_RANGES; i++) {
			__u32 proto = cfg(CFG_PORTS + 32 * b + 2 * i);
			if (!proto)
				break;
			if (proto != p->proto)
				continue;
			__u32 r = cfg(CFG_PORTS + 32 * b + 2 * i + 1);
			__u16 from = r >> 16, to = r & 0xffff;
			if ((p->dport >= from && p->dport <= to) ||
			    (p->sport >= from && p->sport <= to))
				return 1;
		}
		__u32 ack = cfg(CFG_SMALL_ACK + b);
		if (ack && p->proto == IPPROTO_TCP && (p->tcp_flags & TCP_FSRA) == TCP_ACK &&
		    len <= ack - 1)
			return 1;
	}
	return 0;
}

// Returns 1 when the packet is parsed as IPv4 or IPv6, 0 otherwise, and -1
// when it is broadcast or multicast that the policy does not bill.
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p, __u32 flags)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u8 *eth = data;
	if (data + ETH_HLEN > end)
		return 0;
	if (flags & F_SKIP_BROADCAST) {
		if (eth[0] == 0xff && eth[1] == 0xff && eth[2] == 0xff && eth[3] == 0xff &&
		    eth[4] == 0xff && eth[5] == 0xff)
			return -1;
	}
	if ((flags & F_SKIP_MULTICAST) && (eth[0] & 1)) {
		int bcast = eth[0] == 0xff && eth[1] == 0xff && eth[2] == 0xff &&
			    eth[3] == 0xff && eth[4] == 0xff && eth[5] == 0xff;
		// Broadcast is a group address too: when it is billed, spare it.
		if (!bcast || (flags & F_SKIP_BROADCAST))
			return -1;
	}
	__u16 proto = *(__u16 *)(eth + 12);
	__u32 off = ETH_HLEN;
	for (int i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if (data + off + 4 > end)
			return 0;
		proto = *(__u16 *)(data + off + 2);
		off += 4;
	}
	__u32 l4off;
	if (proto == bpf_htons(ETH_P_IP)) {
		__u8 *ip = data + off;
		if ((void *)(ip + 20) > end)
			return 0;
		p->v6 = 0;
		p->dscp = ip[1] >> 2;
		__builtin_memcpy(p->src, ip + 12, 4);
		__builtin_memcpy(p->dst, ip + 16, 4);
		if ((flags & F_SKIP_BROADCAST) && ip[16] == 255 && ip[17] == 255 &&
		    ip[18] == 255 && ip[19] == 255)
			return -1;
		if ((flags & F_SKIP_MULTICAST) && (ip[16] & 0xf0) == 0xe0)
			return -1;
		p->ip_len = (__u16)ip[2] << 8 | ip[3];
		p->cproto = ip[9];
		p->frag = (ip[6] & 0x20) != 0;
		// Later fragments carry no transport header: like nftables, they
		// match no protocol, port or flag rule.
		__u16 frag = ((__u16)ip[6] << 8 | ip[7]) & 0x1fff;
		if (frag) {
			p->frag = 1;
			return 1;
		}
		p->proto = ip[9];
		p->ihl = (ip[0] & 0xf) * 4;
		l4off = off + (ip[0] & 0xf) * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		__u8 *ip = data + off;
		if ((void *)(ip + 40) > end)
			return 0;
		p->v6 = 1;
		p->dscp = ((ip[0] & 0xf) << 2) | (ip[1] >> 6);
		__builtin_memcpy(p->src, ip + 8, 16);
		__builtin_memcpy(p->dst, ip + 24, 16);
		if ((flags & F_SKIP_MULTICAST) && ip[24] == 0xff)
			return -1;
		// Extension headers are not walked: a packet with one matches no
		// protocol, port or flag rule (docs/dataplane.md, limits).
		p->proto = ip[6];
		p->cproto = ip[6];
		p->ip_len = ((__u16)ip[4] << 8 | ip[5]) + 40;
		l4off = off + 40;
		if (p->proto == IPPROTO_FRAGMENT) {
			// The counters look through one fragment header (the
			// bands still do not: see above).
			__u8 *fh = data + l4off;
			if ((void *)(fh + 8) > end)
				return 1;
			p->cproto = fh[0];
			p->frag = (fh[2] << 8 | fh[3]) & 0xfff9 ? 1 : 0;
			return 1;
		}
	} else {
		return 0;
	}
	p->l4off = l4off;
	if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
		__u8 *l4 = data + l4off;
		if ((void *)(l4 + 14) <= end || (p->proto == IPPROTO_UDP && (void *)(l4 + 8) <= end)) {
			if ((void *)(l4 + 4) > end)
				return 1;
			p->sport = (__u16)l4[0] << 8 | l4[1];
			p->dport = (__u16)l4[2] << 8 | l4[3];
			if (p->proto == IPPROTO_TCP) {
				if ((void *)(l4 + 14) > end)
					return 1;
				p->tcp_flags = l4[13];
			}
			p->l4 = 1;
		}
	}
	return 1;
}

#include "rtt.h"

// The class of the throttle rung holding the local address, 0 if none.
static __always_inline __u32 throttle_class(struct pkt *p, int dir_up)
{
	// No throttle rung in the policy (the first rate word is 0): no
	// victim can have a class, so the trie is not searched (one LPM
	// lookup less per packet on every site without a throttle rung).
	if (!cfg(CFG_THROTTLE))
		return 0;
	__u8 *local = dir_up ? p->src : p->dst;
	__u32 *v;
	if (p->v6) {
		struct vkey6 k = {.prefixlen = 160, .way = dir_up};
		__builtin_memcpy(k.addr, local, 16);
		v = bpf_map_lookup_elem(&tg_victims6, &k);
	} else {
		struct vkey4 k = {.prefixlen = 64, .way = dir_up};
		__builtin_memcpy(k.addr, local, 4);
		v = bpf_map_lookup_elem(&tg_victims4, &k);
	}
	if (!v)
		return 0;
	__u32 rate = *v;
	for (int i = 0; i < MAX_THROTTLE; i++) {
		__u32 r = cfg(CFG_THROTTLE + 2 * i);
		if (!r)
			break;
		if (r == rate)
			return cfg(CFG_THROTTLE + 2 * i + 1);
	}
	return 0;
}

// Counts the packet for its local address: `out` when that is the source.
static __always_inline void count(struct pkt *p, int out)
{
	struct addr_key k = {.v6 = p->v6, .dir = out};
	if (p->v6)
		__builtin_memcpy(k.addr, out ? p->src : p->dst, 16);
	else
		__builtin_memcpy(k.addr, out ? p->src : p->dst, 4);
	struct addr_counts *c = bpf_map_lookup_elem(&tg_addrs, &k);
	if (!c) {
		struct addr_counts zero = {};
		// BPF_NOEXIST: another CPU may have made it meanwhile; either
		// way the lookup below finds this CPU's copy.
		bpf_map_update_elem(&tg_addrs, &k, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&tg_addrs, &k);
		if (!c)
			return;
	}
	// Per-CPU values: plain adds, no atomics.
	__u64 len = p->ip_len;
	c->packets++;
	c->bytes += len;
	if (p->cproto == IPPROTO_TCP) {
		c->tcp_packets++;
		c->tcp_bytes += len;
		if (p->l4 && (p->tcp_flags & 0x12) == 0x02)
			c->tcp_syn++;
	} else if (p->cproto == IPPROTO_UDP) {
		c->udp_packets++;
		c->udp_bytes += len;
	} else if (p->cproto == IPPROTO_ICMP || p->cproto == IPPROTO_ICMPV6) {
		c->icmp_packets++;
		c->icmp_bytes += len;
	}
	if (p->frag) {
		c->fragments++;
		c->fragment_bytes += len;
	}
}

// dir_up: the local (tenant) address is the source. by_vif: the tenant is
// the device's (hypervisor download). vm_ingress: a VM's upload where it
// enters the host; only its tenant's packets are redirected. uplink: the
// upload hook, which lets packets shaped on a VM's ingress pass.
static __always_inline int classify(struct __sk_buff *skb, int dir_up, int by_vif, int vm_ingress,
				    int uplink)
{
	if (uplink && (skb->mark & SHAPED_FLAG)) {
		// Shaped on the VM's ingress already: let it leave as it is. A
		// return of 0 means "no match", so the mirred action is skipped.
		return 0;
	}
	__u32 counted = skb->mark & COUNTED_FLAG;
	__u32 rtt_seen = skb->mark & RTT_SEEN_FLAG;
	__u32 flags = cfg(CFG_FLAGS);
	__u32 keep = (flags & F_COUNT) ? COUNTED_FLAG : 0;
	__u32 realm = cfg(CFG_DEFAULT_REALM);
	// Unknown traffic: realm class 0:realm, mark 0 -> the root's default.
	skb->priority = realm;
	skb->mark = 0;
	struct pkt p = {};
	int r = parse(skb, &p, flags);
	if (r <= 0)
		return vm_ingress ? 0 : -1;
	if (keep) {
		if (!counted)
			count(&p, dir_up);
		skb->mark = keep;
	}
	// A throttle rung's victim: its packets go to the rung's class in the
	// root tree (the root HTB takes skb->priority of its own major before
	// any filter), whatever its tenant.
	__u32 thr = throttle_class(&p, dir_up);
	if (thr) {
		skb->priority = thr;
		skb->mark = keep | (vm_ingress ? SHAPED_FLAG : 0);
		return -1;
	}
	__u8 *remote = dir_up ? p.dst : p.src;
	__u8 *local = dir_up ? p.src : p.dst;
	__u32 *v;
	__u32 tenant = 0;
	if (p.v6) {
		struct lpm6 k = {.prefixlen = 128};
		__builtin_memcpy(k.addr, remote, 16);
		v = bpf_map_lookup_elem(&tg_realms6, &k);
		if (v)
			realm = *v;
		if (!by_vif) {
			__builtin_memcpy(k.addr, local, 16);
			v = bpf_map_lookup_elem(&tg_tenants6, &k);
			if (v)
				tenant = *v;
		}
	} else {
		struct lpm4 k = {.prefixlen = 32};
		__builtin_memcpy(k.addr, remote, 4);
		v = bpf_map_lookup_elem(&tg_realms4, &k);
		if (v)
			realm = *v;
		if (!by_vif) {
			__builtin_memcpy(k.addr, local, 4);
			v = bpf_map_lookup_elem(&tg_tenants4, &k);
			if (v)
				tenant = *v;
		}
	}
	if (by_vif) {
		__u32 ifindex = skb->ifindex;
		v = bpf_map_lookup_elem(&tg_vifs, &ifindex);
		if (v)
			tenant = *v;
	}
	skb->priority = realm;
	if (!tenant)
		return vm_ingress ? 0 : -1;
	__u32 rkeep = rtt_hook(skb, &p, flags, rtt_seen, tenant, realm, dir_up);
	skb->mark |= rkeep;
	struct tenant_realm tr = {.tenant = tenant, .realm = realm};
	v = bpf_map_lookup_elem(&tg_classes, &tr);
	if (!v)
		return vm_ingress ? 0 : -1;
	__u32 class = *v;
	if (flags & F_BANDS) {
		__u32 band = 2; // normal
		if (band_matches(&p, skb->len, 0))
			band = 1;
		else if (band_matches(&p, skb->len, 1))
			band = 3;
		class |= band;
	}
	skb->priority = class;
	skb->mark = (class >> 16) | (vm_ingress ? SHAPED_FLAG : 0) | keep | rkeep;
	return -1;
}

SEC("classifier")
int tg_up(struct __sk_buff *skb)
{
	return classify(skb, 1, 0, 0, 1);
}

SEC("classifier")
int tg_down(struct __sk_buff *skb)
{
	return classify(skb, 0, 0, 0, 0);
}

SEC("classifier")
int tg_down_vif(struct __sk_buff *skb)
{
	return classify(skb, 0, 1, 0, 0);
}

SEC("classifier")
int tg_up_vm(struct __sk_buff *skb)
{
	return classify(skb, 1, 0, 1, 0);
}

char _license[] SEC("license") = "Apache-2.0";
