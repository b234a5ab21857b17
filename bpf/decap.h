/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * decap.h - the decap stage: tunnel packets to the node end here.
 *
 * An untagged IPv6 packet whose upper-layer protocol (after extension
 * headers) is 41 (IPv6) or 4 (IPv4), or an IPv4 packet with protocol 4 or
 * 41, addressed to one of the node's addresses with NODE_ADDR_F_DECAP
 * (node_addrs, pipeline.h: the underlay addresses), is a tunnel packet to
 * the node. It is decapsulated only when
 *
 *   its outer source lies within tunnel_sources   else DROP_TUNNEL_SOURCE
 *   it is not a fragment (aird does not reassemble)  else DROP_DECAP_FRAGMENT
 *   the inner packet is a complete, sane IPv4/IPv6
 *   packet within the outer one                   else DROP_DECAP_MALFORMED
 *   the inner destination is the node's own: an
 *   address of its namespace (local_addrs: a
 *   backend has its VIPs on lo), a node address
 *   (node_addrs) or a local endpoint (endpoints)  else DROP_TUNNEL_DESTINATION
 *
 * so the node never relays a tunnelled packet anywhere else. Then the
 * outer IP header (and its extension headers) is removed, the Ethernet
 * type set to the inner family, and the inner packet passed to the kernel
 * (XDP_PASS), which delivers it locally (or, for an endpoint, along its
 * host route). The kernel needs no ip6tnl/ipip device for this.
 */
#ifndef AIRD_DECAP_H
#define AIRD_DECAP_H

#include "common.h"
#include "parse.h"
#include "pipeline.h"
#include "proto.h"
#include "router_maps.h"

/* decap_target reports whether pkt is a tunnel packet to a decap address. */
static __always_inline int decap_target(const struct packet *pkt)
{
	struct addr_key key = {};
	__u32 *flags;

	if (pkt->l4_proto != IP_PROTO_IPV6 && pkt->l4_proto != IP_PROTO_IPIP)
		return 0;
	if (pkt_dst_key(pkt, &key))
		return 0;
	flags = bpf_map_lookup_elem(&node_addrs, &key);
	return flags && (*flags & NODE_ADDR_F_DECAP);
}

/*
 * decap_inner checks the inner packet at pkt->l4_off and returns its
 * ethertype (host order), or 0 when it is not a complete, sane IPv4/IPv6
 * packet within the outer one.
 */
static __always_inline __u16 decap_inner(const struct packet *pkt)
{
	void *data = pkt->data;
	void *data_end = pkt->data_end;
	__u32 inner_off = pkt->l4_off, inner_len;
	__u16 inner_proto;

	barrier_var(inner_off);
	if (pkt->flags & (PKT_F_NO_L4 | PKT_F_IP_TRUNC | PKT_F_JUMBO) || inner_off > MAX_L4_OFF)
		return 0;
	if (pkt->l4_proto == IP_PROTO_IPV6) {
		struct ipv6_hdr *in = data + inner_off;

		if ((void *)(in + 1) > data_end)
			return 0;
		if ((bpf_ntohl(in->ver_tc_flow) >> 28) != 6)
			return 0;
		inner_len = IPV6_HLEN + bpf_ntohs(in->payload_len);
		inner_proto = ETH_P_IPV6;
	} else {
		struct ipv4_hdr *in = data + inner_off;
		__u32 hlen;

		if ((void *)(in + 1) > data_end)
			return 0;
		hlen = (__u32)(in->version_ihl & 0x0f) * 4;
		inner_len = bpf_ntohs(in->tot_len);
		if ((in->version_ihl >> 4) != 4 || hlen < IPV4_MIN_HLEN || inner_len < hlen)
			return 0;
		inner_proto = ETH_P_IP;
	}
	if (inner_off + inner_len > ETH_HLEN + (__u32)pkt->l3_len)
		return 0;
	return inner_proto;
}

/*
 * inner_dst_key reads the destination of the packet a tunnel packet
 * carries (decap_inner checked it is whole) into k.
 */
static __always_inline int inner_dst_key(const struct packet *pkt, __u16 inner_proto, struct addr_key *k)
{
	__u32 off = pkt->l4_off;

	barrier_var(off);
	if (off > MAX_L4_OFF)
		return -1;
	if (inner_proto == ETH_P_IPV6) {
		struct ipv6_hdr *in = pkt->data + off;

		if ((void *)(in + 1) > pkt->data_end)
			return -1;
		__builtin_memcpy(k->addr, in->daddr, 16);
		return 0;
	}
	{
		struct ipv4_hdr *in = pkt->data + off;

		if ((void *)(in + 1) > pkt->data_end)
			return -1;
		addr_v4mapped((__u32 *)k->addr, in->daddr);
	}
	return 0;
}

#ifndef DECAP_INNER_FIB
/*
 * inner_dst_ours reports whether an inner destination is the node's own:
 * one of its addresses, or a local endpoint's.
 */
static __always_inline int inner_dst_ours(struct xdp_md *ctx, const struct addr_key *k)
{
	return bpf_map_lookup_elem(&local_addrs, k) || bpf_map_lookup_elem(&node_addrs, k) ||
	       bpf_map_lookup_elem(&endpoints, k);
}
#else
/*
 * The measured alternative (bench/decap.sh builds it): ask the kernel's
 * FIB whether it would forward the inner packet; "not forwarded" (a local
 * address, but also no route) counts as the node's own. It needs no
 * address map but costs a FIB lookup per packet (docs/performance.md).
 */
static __always_inline int inner_dst_ours(struct xdp_md *ctx, const struct addr_key *k)
{
	struct bpf_fib_lookup fib = {};
	const __u32 *a = (const __u32 *)k->addr;

	if (a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0x0000ffff)) {
		fib.family = 2; /* AF_INET */
		fib.ipv4_dst = a[3];
	} else {
		fib.family = 10; /* AF_INET6 */
		__builtin_memcpy(fib.ipv6_dst, k->addr, 16);
	}
	fib.ifindex = ctx->ingress_ifindex;
	return bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) == BPF_FIB_LKUP_RET_NOT_FWDED ||
	       bpf_map_lookup_elem(&endpoints, k);
}
#endif

/*
 * decap_strip removes everything between the Ethernet header and the
 * inner packet, keeping the MAC addresses; returns 0 or a drop reason.
 */
static __always_inline int decap_strip(struct xdp_md *ctx, const struct packet *pkt, __u16 inner_proto)
{
	void *data = pkt->data;
	void *data_end = pkt->data_end;
	struct ethhdr *eth = data;
	__u8 macs[2 * ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return DROP_DECAP_MALFORMED;
	__builtin_memcpy(macs, eth->h_dest, sizeof(macs));
	if (bpf_xdp_adjust_head(ctx, (int)(pkt->l4_off - ETH_HLEN)))
		return DROP_HEADROOM;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return DROP_HEADROOM;
	__builtin_memcpy(eth->h_dest, macs, sizeof(macs));
	eth->h_proto = bpf_htons(inner_proto);
	return 0;
}

static __always_inline int stage_decap(struct xdp_md *ctx, struct packet *pkt)
{
	struct addr_key inner = {};
	__u16 inner_proto;
	int err;

	if (!decap_target(pkt))
		return STAGE_CONTINUE;
	if (!tunnel_source_trusted(pkt))
		return drop_packet(DROP_TUNNEL_SOURCE);
	if (pkt->flags & PKT_F_FRAGMENT)
		return drop_packet(DROP_DECAP_FRAGMENT);
	inner_proto = decap_inner(pkt);
	if (!inner_proto || inner_dst_key(pkt, inner_proto, &inner))
		return drop_packet(DROP_DECAP_MALFORMED);
	if (!inner_dst_ours(ctx, &inner))
		return drop_packet(DROP_TUNNEL_DESTINATION);
	err = decap_strip(ctx, pkt, inner_proto);
	if (err)
		return drop_packet(err);
	count_stat(pkt->family == FAMILY_IPV6 ? LB_STAT_DECAP_IPV6 : LB_STAT_DECAP_IPV4);
	return XDP_PASS;
}

#endif /* AIRD_DECAP_H */
