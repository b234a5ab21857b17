//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * floor.c - the benchmarks' own XDP programs; aird does not use them.
 *
 * Floors, the least an XDP forwarder does, that bench/ measures aird_xdp
 * against, run the same way in the same process:
 *
 *   floor_xdp      swap the Ethernet addresses, XDP_TX
 *   floor_ip6ip6   encapsulate in IPv6 (fixed outer addresses, hop limit
 *                  64, payload length from the packet), new Ethernet
 *                  header, XDP_TX: the least an IPv6 load balancer does
 *
 * restore_xdp is the steady-state harness. BPF_PROG_TEST_RUN with repeat
 * N runs a program N times on one buffer without restoring it, and an
 * encapsulating program would meet its own output from the second run on.
 * restore_xdp runs first in every repetition: it undoes an IPv6-in-IPv6
 * encapsulation (strips the outer header, puts back the original Ethernet
 * header and, for aird, the inner hop limit it decremented) - or, for a
 * program that forwards without encapsulating (plain: the router), puts
 * back the Ethernet header and the hop limit of every packet - optionally
 * makes the packet a new flow (the source address counts up), then tail
 * calls the program under test (targets[0]). A packet that is not
 * encapsulated (the first run) is passed on as it is. Its own cost is
 * measured with null_xdp as the target and subtracted.
 */
#include "common.h"
#include "proto.h"

SEC("xdp")
int floor_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 tmp[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	return XDP_TX;
}

/* set_addr writes 2001:db8:<site>::1, one 32-bit store at a time. */
static __always_inline void set_addr(__u8 *a, __u32 site)
{
	__u32 *w = (__u32 *)a;

	w[0] = bpf_htonl(0x20010db8);
	w[1] = bpf_htonl(site << 16);
	w[2] = 0;
	w[3] = bpf_htonl(1);
}

SEC("xdp")
int floor_ip6ip6(struct xdp_md *ctx)
{
	struct ethhdr *eth, *old;
	struct ipv6_hdr *ip;
	__u8 dst[ETH_ALEN], src[ETH_ALEN];
	void *data, *data_end;
	__u32 len = ctx->data_end - ctx->data;

	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct ipv6_hdr)))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	ip = data + ETH_HLEN;
	old = data + sizeof(struct ipv6_hdr);
	if ((void *)(ip + 1) > data_end || (void *)(old + 1) > data_end)
		return XDP_DROP;
	/* The old Ethernet header overlaps the new IPv6 header: read it first. */
	__builtin_memcpy(dst, old->h_source, ETH_ALEN);
	__builtin_memcpy(src, old->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, dst, ETH_ALEN);
	__builtin_memcpy(eth->h_source, src, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	ip->ver_tc_flow = bpf_htonl(6U << 28);
	ip->payload_len = bpf_htons(len - ETH_HLEN);
	ip->nexthdr = 41;
	ip->hop_limit = 64;
	set_addr(ip->saddr, 0x0005); /* 2001:db8:5::1 */
	set_addr(ip->daddr, 0x00be); /* 2001:db8:be::1 */
	return XDP_TX;
}

SEC("xdp")
int null_xdp(struct xdp_md *ctx)
{
	return XDP_TX;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} targets SEC(".maps");

/* struct restore_conf is the single value of restore, written by Go. */
struct restore_conf {
	struct ethhdr eth; /* the original packet's Ethernet header */
	__u16 hop;         /* 1: aird decrements the inner hop limit; put it back */
	__u32 vary;        /* 1: every repetition is a new flow (the source counts up) */
	__u32 plain;       /* not 0: the program forwards without encapsulating (the router): every
			    * repetition gets eth back and the hop limit set to this value */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct restore_conf);
} restore SEC(".maps");

SEC("xdp")
int restore_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6_hdr *ip = data + ETH_HLEN;
	struct restore_conf *c;
	__u32 zero = 0, *low;

	c = bpf_map_lookup_elem(&restore, &zero);
	if (!c || (void *)(ip + 1) > data_end)
		return XDP_ABORTED;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6) && ip->nexthdr == 41) {
		if (bpf_xdp_adjust_head(ctx, (int)sizeof(struct ipv6_hdr)))
			return XDP_ABORTED;
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		eth = data;
		ip = data + ETH_HLEN;
		if ((void *)(ip + 1) > data_end)
			return XDP_ABORTED;
		__builtin_memcpy(eth, &c->eth, ETH_HLEN);
		if (c->hop)
			ip->hop_limit++;
	} else if (c->plain) {
		__builtin_memcpy(eth, &c->eth, ETH_HLEN);
		ip->hop_limit = c->plain;
	}
	if (c->vary) {
		low = (__u32 *)&ip->saddr[12];
		*low = bpf_htonl(bpf_ntohl(*low) + 1);
	}
	bpf_tail_call(ctx, &targets, 0);
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
