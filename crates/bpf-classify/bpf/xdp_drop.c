// SPDX-License-Identifier: Apache-2.0
//
// tollgate's XDP drop list (issues 15 and 17): packets to (or from) an
// address the guard's `drop` rung holds, to an address of the policy's
// networks that no tenant holds (`[guard] unused = "drop"`), or matching
// an attack's signature (protocol, source port) are dropped in the driver,
// before the kernel builds an skb for them. Everything else passes, and so
// does every packet this program cannot parse: it never drops what it has
// not read.
//
// Two programs share the maps:
//   tg_xdp_in   on the interfaces traffic *towards* tollgate's addresses
//               enters by (the uplink): looks up the destination, way 0
//   tg_xdp_out  on the interfaces traffic *from* them enters by (the LAN
//               in router mode, each VM's interface in hypervisor mode):
//               looks up the source, way 1
// The kernel keeps a program's name (15 characters): linux-dataplane finds
// its own programs on an interface by these names, and leaves any other
// program alone.
//
// Maps (keep in step with crates/bpf-classify/src/xdp.rs):
//   tg_xdrop4/6  LPM trie. Key data: way, protocol, source port (network
//                order), address; the prefix length counts the first 32
//                bits (way, protocol, port) plus the address's. Protocol 0
//                stands for any protocol and port 0 for any port, so a
//                victim's whole-traffic drop is (way, 0, 0, prefix) and an
//                amplification's signature (way, 17, 53, prefix). Value:
//                why (1: a guard rung, 2: unused addresses), the index of
//                the counter the drop is counted in.
//   tg_xstats    per-CPU array of {packets, bytes} by that index.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct xkey4 {
	__u32 prefixlen;
	__u8 way;
	__u8 proto;
	__u16 sport; // network order
	__u8 addr[4];
};

struct xkey6 {
	__u32 prefixlen;
	__u8 way;
	__u8 proto;
	__u16 sport;
	__u8 addr[16];
};

struct xcount {
	__u64 packets, bytes;
};

#define XSTATS 4

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct xkey4);
	__type(value, __u32);
} tg_xdrop4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct xkey6);
	__type(value, __u32);
} tg_xdrop6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XSTATS);
	__type(key, __u32);
	__type(value, struct xcount);
} tg_xstats SEC(".maps");

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

static __always_inline int dropped(__u32 *why, __u64 len)
{
	__u32 i = *why;
	if (i >= XSTATS)
		i = 0;
	struct xcount *c = bpf_map_lookup_elem(&tg_xstats, &i);
	if (c) {
		// Per-CPU values: plain adds.
		c->packets++;
		c->bytes += len;
	}
	return XDP_DROP;
}

// The most specific entry first: the packet's protocol and source port,
// then its protocol with any port, then any protocol.
static __always_inline __u32 *lookup4(struct xkey4 *k)
{
	__u32 *v = bpf_map_lookup_elem(&tg_xdrop4, k);
	if (v)
		return v;
	if (k->sport) {
		k->sport = 0;
		v = bpf_map_lookup_elem(&tg_xdrop4, k);
		if (v)
			return v;
	}
	if (k->proto) {
		k->proto = 0;
		v = bpf_map_lookup_elem(&tg_xdrop4, k);
	}
	return v;
}

static __always_inline __u32 *lookup6(struct xkey6 *k)
{
	__u32 *v = bpf_map_lookup_elem(&tg_xdrop6, k);
	if (v)
		return v;
	if (k->sport) {
		k->sport = 0;
		v = bpf_map_lookup_elem(&tg_xdrop6, k);
		if (v)
			return v;
	}
	if (k->proto) {
		k->proto = 0;
		v = bpf_map_lookup_elem(&tg_xdrop6, k);
	}
	return v;
}

static __always_inline int xdp_drop(struct xdp_md *ctx, int out)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u64 len = end - data;
	__u8 *eth = data;
	if (data + ETH_HLEN > end)
		return XDP_PASS;
	__u16 proto = *(__u16 *)(eth + 12);
	__u32 off = ETH_HLEN;
	for (int i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if (data + off + 4 > end)
			return XDP_PASS;
		proto = *(__u16 *)(data + off + 2);
		off += 4;
	}
	__u32 *why;
	if (proto == bpf_htons(ETH_P_IP)) {
		__u8 *ip = data + off;
		if ((void *)(ip + 20) > end)
			return XDP_PASS;
		__u32 ihl = (ip[0] & 0xf) * 4;
		if ((ip[0] >> 4) != 4 || ihl < 20)
			return XDP_PASS;
		struct xkey4 k = {.prefixlen = 64, .way = out, .proto = ip[9]};
		__builtin_memcpy(k.addr, out ? ip + 12 : ip + 16, 4);
		// A later fragment has no transport header: it matches a
		// signature of its protocol with any port, or a whole drop.
		__u16 frag = ((__u16)ip[6] << 8 | ip[7]) & 0x1fff;
		if (!frag && (k.proto == IPPROTO_TCP || k.proto == IPPROTO_UDP)) {
			__u8 *l4 = (__u8 *)ip + ihl;
			if ((void *)(l4 + 4) <= end)
				k.sport = *(__u16 *)l4;
		}
		why = lookup4(&k);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		__u8 *ip = data + off;
		if ((void *)(ip + 40) > end)
			return XDP_PASS;
		if ((ip[0] >> 4) != 6)
			return XDP_PASS;
		// Extension headers are not walked: a packet with one matches by
		// its first next-header value (docs/dataplane.md, limits).
		struct xkey6 k = {.prefixlen = 160, .way = out, .proto = ip[6]};
		__builtin_memcpy(k.addr, out ? ip + 8 : ip + 24, 16);
		if (k.proto == IPPROTO_TCP || k.proto == IPPROTO_UDP) {
			__u8 *l4 = (__u8 *)ip + 40;
			if ((void *)(l4 + 4) <= end)
				k.sport = *(__u16 *)l4;
		}
		why = lookup6(&k);
	} else {
		return XDP_PASS;
	}
	if (!why)
		return XDP_PASS;
	return dropped(why, len);
}

SEC("xdp")
int tg_xdp_in(struct xdp_md *ctx)
{
	return xdp_drop(ctx, 0);
}

SEC("xdp")
int tg_xdp_out(struct xdp_md *ctx)
{
	return xdp_drop(ctx, 1);
}

char _license[] SEC("license") = "Apache-2.0";
