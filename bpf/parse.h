/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * parse.h - the shared packet parser, the first step of the pipeline.
 *
 * parse_packet() reads the Ethernet header, up to two VLAN tags and the
 * fixed IPv4/IPv6 header, and records what it found in a struct packet that
 * every later stage consumes. It never writes to the packet and every read is
 * bounds-checked against data_end, so truncated or garbage input only ever
 * yields FAMILY_MALFORMED (or FAMILY_OTHER for ethertypes aird does not
 * handle).
 *
 * Offsets in struct packet are relative to data. A stage that dereferences
 * the packet through an offset must re-check the bounds itself: the
 * verifier does not carry the parser's checks across a stored offset.
 */
#ifndef AIRD_PARSE_H
#define AIRD_PARSE_H

#include "common.h"
#include "proto.h"

/*
 * enum family classifies a packet and indexes the family_stats map. It is
 * shared with Go through bpf2go (-type family), so append only.
 */
enum family {
	FAMILY_IPV4 = 0,
	FAMILY_IPV6 = 1,
	FAMILY_OTHER = 2,     /* a well-formed frame that is neither IPv4 nor IPv6 */
	FAMILY_MALFORMED = 3, /* truncated or inconsistent headers */
	FAMILY_MAX,
};

/* At most this many 802.1Q/802.1ad tags are skipped (QinQ). */
#define MAX_VLAN_TAGS 2

/* struct packet flags. */
#define PKT_F_FRAGMENT (1 << 0) /* IPv4 non-first fragment: no L4 header */

/* struct packet is the parsed view of one frame, passed along the stages. */
struct packet {
	void *data;
	void *data_end;
	__u32 len;        /* bytes from data to data_end */
	__u16 eth_proto;  /* innermost ethertype, host byte order */
	__u16 l3_off;     /* offset of the IPv4/IPv6 header */
	__u16 l4_off;     /* offset of the L4 header, 0 if none */
	__u8 l4_proto;    /* IPPROTO_* (IPv6: first next header) */
	__u8 vlan_depth;  /* VLAN tags skipped */
	__u8 flags;       /* PKT_F_* */
	enum family family;
};

static __always_inline int is_vlan_proto(__u16 proto)
{
	return proto == ETH_P_8021Q || proto == ETH_P_8021AD;
}

static __always_inline enum family parse_ipv4(struct packet *pkt, void *l3)
{
	struct ipv4_hdr *ip = l3;
	__u32 hlen;

	if ((void *)(ip + 1) > pkt->data_end)
		return FAMILY_MALFORMED;
	if ((ip->version_ihl >> 4) != 4)
		return FAMILY_MALFORMED;
	hlen = (__u32)(ip->version_ihl & 0x0f) * 4;
	if (hlen < IPV4_MIN_HLEN)
		return FAMILY_MALFORMED;
	if (l3 + hlen > pkt->data_end)
		return FAMILY_MALFORMED;
	if (bpf_ntohs(ip->tot_len) < hlen)
		return FAMILY_MALFORMED;

	pkt->l4_proto = ip->protocol;
	if (bpf_ntohs(ip->frag_off) & IPV4_OFFSET_MASK)
		pkt->flags |= PKT_F_FRAGMENT;
	else
		pkt->l4_off = pkt->l3_off + hlen;
	return FAMILY_IPV4;
}

static __always_inline enum family parse_ipv6(struct packet *pkt, void *l3)
{
	struct ipv6_hdr *ip6 = l3;

	if ((void *)(ip6 + 1) > pkt->data_end)
		return FAMILY_MALFORMED;
	if ((bpf_ntohl(ip6->ver_tc_flow) >> 28) != 6)
		return FAMILY_MALFORMED;

	/*
	 * TODO: walk extension headers (hop-by-hop, routing, fragment,
	 * destination options) to find the real L4 header. For now l4_proto
	 * is the first next header, which is the L4 protocol for the common
	 * case of no extension headers.
	 */
	pkt->l4_proto = ip6->nexthdr;
	pkt->l4_off = pkt->l3_off + sizeof(*ip6);
	return FAMILY_IPV6;
}

/*
 * parse_packet fills pkt from ctx and returns (and stores) its family.
 */
static __always_inline enum family parse_packet(struct xdp_md *ctx, struct packet *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *cursor;
	__u16 proto;
	int i;

	__builtin_memset(pkt, 0, sizeof(*pkt));
	pkt->data = data;
	pkt->data_end = data_end;
	pkt->len = data_end - data;
	pkt->family = FAMILY_MALFORMED;

	if ((void *)(eth + 1) > data_end)
		return pkt->family;
	proto = bpf_ntohs(eth->h_proto);
	cursor = eth + 1;

#pragma unroll
	for (i = 0; i < MAX_VLAN_TAGS; i++) {
		struct vlan_tag *tag = cursor;

		if (!is_vlan_proto(proto))
			break;
		if ((void *)(tag + 1) > data_end)
			return pkt->family;
		proto = bpf_ntohs(tag->encap_proto);
		cursor = tag + 1;
		pkt->vlan_depth++;
	}

	pkt->eth_proto = proto;
	pkt->l3_off = cursor - data;

	switch (proto) {
	case ETH_P_IP:
		pkt->family = parse_ipv4(pkt, cursor);
		break;
	case ETH_P_IPV6:
		pkt->family = parse_ipv6(pkt, cursor);
		break;
	default:
		/* Includes a third VLAN tag: not parsed further. */
		pkt->family = FAMILY_OTHER;
		break;
	}
	return pkt->family;
}

#endif /* AIRD_PARSE_H */
