/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * decap.h - the decap stage: tunnel packets to the node end here.
 *
 * An untagged IPv6 packet whose upper-layer protocol (after extension
 * headers) is 41 (IPv6) or 4 (IPv4), or an IPv4 packet with protocol 4 or
 * 41, addressed to one of the node's underlay addresses (decap_addrs, filled
 * by the control plane), is decapsulated in XDP: the outer IP header (and
 * its extension headers) is removed, the Ethernet type set to the inner
 * family, and the inner packet passed to the kernel (XDP_PASS), which
 * delivers it locally - a backend has its VIPs on lo. The kernel needs no
 * ip6tnl/ipip device for this. The inner packet must be a complete, sane
 * IPv4/IPv6 packet within the outer one, else it is a counted drop; so is a
 * fragmented outer packet (aird does not reassemble).
 */
#ifndef AIRD_DECAP_H
#define AIRD_DECAP_H

#include "common.h"
#include "lb_maps.h"
#include "parse.h"
#include "proto.h"

#ifndef STAGE_CONTINUE
#define STAGE_CONTINUE (-1)
#endif

static __always_inline int stage_decap(struct xdp_md *ctx, struct packet *pkt)
{
	void *data = pkt->data;
	void *data_end = pkt->data_end;
	struct decap_key key = {};
	struct ethhdr *eth;
	__u32 inner_off, outer_end, inner_len, strip;
	__u16 inner_proto;
	__u8 macs[2 * ETH_ALEN];

	if (pkt->vlan_depth)
		return STAGE_CONTINUE;
	if (pkt->l4_proto != IP_PROTO_IPV6 && pkt->l4_proto != IP_PROTO_IPIP)
		return STAGE_CONTINUE;
	if (pkt->family == FAMILY_IPV6) {
		struct ipv6_hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > data_end)
			return STAGE_CONTINUE;
		__builtin_memcpy(key.addr, ip6->daddr, 16);
	} else if (pkt->family == FAMILY_IPV4) {
		struct ipv4_hdr *ip = data + ETH_HLEN;
		__u32 *a = (__u32 *)key.addr;

		if ((void *)(ip + 1) > data_end)
			return STAGE_CONTINUE;
		a[2] = bpf_htonl(0x0000ffff);
		a[3] = ip->daddr;
	} else {
		return STAGE_CONTINUE;
	}
	if (!bpf_map_lookup_elem(&decap_addrs, &key))
		return STAGE_CONTINUE;

	if (pkt->flags & PKT_F_FRAGMENT)
		return drop_packet(DROP_DECAP_FRAGMENT);
	inner_off = pkt->l4_off;
	barrier_var(inner_off);
	if (pkt->flags & (PKT_F_NO_L4 | PKT_F_IP_TRUNC | PKT_F_JUMBO) || inner_off > MAX_L4_OFF)
		return drop_packet(DROP_DECAP_MALFORMED);
	outer_end = ETH_HLEN + (__u32)pkt->l3_len;

	if (pkt->l4_proto == IP_PROTO_IPV6) {
		struct ipv6_hdr *in = data + inner_off;

		if ((void *)(in + 1) > data_end)
			return drop_packet(DROP_DECAP_MALFORMED);
		if ((bpf_ntohl(in->ver_tc_flow) >> 28) != 6)
			return drop_packet(DROP_DECAP_MALFORMED);
		inner_len = IPV6_HLEN + bpf_ntohs(in->payload_len);
		inner_proto = ETH_P_IPV6;
	} else {
		struct ipv4_hdr *in = data + inner_off;
		__u32 hlen;

		if ((void *)(in + 1) > data_end)
			return drop_packet(DROP_DECAP_MALFORMED);
		hlen = (__u32)(in->version_ihl & 0x0f) * 4;
		inner_len = bpf_ntohs(in->tot_len);
		if ((in->version_ihl >> 4) != 4 || hlen < IPV4_MIN_HLEN || inner_len < hlen)
			return drop_packet(DROP_DECAP_MALFORMED);
		inner_proto = ETH_P_IP;
	}
	if (inner_off + inner_len > outer_end)
		return drop_packet(DROP_DECAP_MALFORMED);

	eth = data;
	if ((void *)(eth + 1) > data_end)
		return drop_packet(DROP_DECAP_MALFORMED);
	__builtin_memcpy(macs, eth->h_dest, sizeof(macs));
	strip = inner_off - ETH_HLEN;
	if (bpf_xdp_adjust_head(ctx, (int)strip))
		return drop_packet(DROP_HEADROOM);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return drop_packet(DROP_HEADROOM);
	__builtin_memcpy(eth->h_dest, macs, sizeof(macs));
	eth->h_proto = bpf_htons(inner_proto);
	count_stat(pkt->family == FAMILY_IPV6 ? LB_STAT_DECAP_IPV6 : LB_STAT_DECAP_IPV4);
	return XDP_PASS;
}

#endif /* AIRD_DECAP_H */
