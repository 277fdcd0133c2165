// SPDX-License-Identifier: Apache-2.0
//
// const_class.c -- the cheapest classifier on tollgate's hook, for
// bench/ebpf_split.sh: a tc program (direct action) that writes one fixed
// class into skb->priority and one fixed shard into the mark, with no
// parsing and no map lookups. Put in front of tollgate's own filter it
// shows what tollgate's tree costs with a classifier that costs nothing;
// on a bare HTB it shows what the clsact hook itself costs.
// Build: clang -target bpf -O2 -DCLASS=0x... -DMARK=0x... -c const_class.c
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#ifndef CLASS
#error "-DCLASS=major<<16|minor"
#endif
#ifndef MARK
#define MARK 0
#endif

SEC("classifier")
int const_class(struct __sk_buff *skb)
{
	skb->priority = CLASS;
	skb->mark = MARK;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "Apache-2.0";
