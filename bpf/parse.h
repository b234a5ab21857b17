/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * parse.h - the shared packet parser, the first step of the pipeline.
 *
 * parse_packet() reads the Ethernet header, up to two VLAN tags, the fixed
 * IPv4/IPv6 header, the IPv6 extension header chain (hop-by-hop, routing,
 * destination options, AH, fragment; at most MAX_IPV6_EXT_HDRS of them) and
 * the first bytes of the L4 header (ports of TCP, UDP and SCTP, TCP flags),
 * and records what it found in a struct packet that every later stage
 * consumes. It never writes to the packet and every read is bounds-checked
 * against data_end, so truncated or garbage input only ever yields
 * FAMILY_MALFORMED (or FAMILY_OTHER for ethertypes aird does not handle),
 * or a family with PKT_F_* flags telling the stages what is missing.
 * parse_fast() fills the same struct packet for the common frames
 * (untagged, no IPv6 extension headers or IPv4 options, unfragmented, TCP
 * or UDP) with far fewer instructions; anything else takes the general
 * parser.
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
 * enum family classifies a packet and indexes the family counters
 * (struct pipeline_counters). It is shared with Go through bpf2go, so
 * append only, below FAMILY_SLOTS.
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
/* At most this many IPv6 extension headers are walked. */
#define MAX_IPV6_EXT_HDRS 6
/* An L4 header further than this from the start of the frame is not read. */
#define MAX_L4_OFF 512

/* struct packet flags. */
#define PKT_F_FRAGMENT (1 << 0)  /* part of a fragmented datagram, the first fragment included
				  * (IPv4: MF or an offset; IPv6: a fragment header) */
#define PKT_F_NO_L4 (1 << 1)     /* no L4 header to read: a non-first fragment, or an IPv6
				  * header chain not walked to its end */
#define PKT_F_L4_TRUNC (1 << 2)  /* an extension header or the L4 header is cut off */
#define PKT_F_EXT_LIMIT (1 << 3) /* too many (or too long) IPv6 extension headers */
#define PKT_F_PORTS (1 << 4)     /* sport and dport are valid (TCP, UDP, SCTP) */
#define PKT_F_IP_TRUNC (1 << 5)  /* the frame ends before the IP header's length */
#define PKT_F_JUMBO (1 << 6)     /* IPv6 payload length 0 with a payload: the length
				  * is not in the header (jumbogram, or a GRO'd packet
				  * in generic XDP); stages must not forward it */

/* struct packet is the parsed view of one frame, passed along the stages. */
struct packet {
	void *data;
	void *data_end;
	__u32 len;        /* bytes from data to data_end */
	__u16 eth_proto;  /* innermost ethertype, host byte order */
	__u16 l3_off;     /* offset of the IPv4/IPv6 header */
	__u16 l4_off;     /* offset of the L4 header (after IPv6 extension headers), 0 if none */
	__u16 l3_len;     /* IP length from the header: IPv4 total length, IPv6 40 + payload length
			   * (wraps above 65,535: PKT_F_IP_TRUNC is decided before, in 32 bits) */
	__be16 sport;     /* valid with PKT_F_PORTS */
	__be16 dport;
	__u8 l4_proto;    /* upper-layer protocol (IPv6: after the extension headers) */
	__u8 tcp_flags;   /* TCP_FLAG_*, 0 unless TCP with PKT_F_PORTS */
	__u8 vlan_depth;  /* VLAN tags skipped */
	__u8 flags;       /* PKT_F_* */
	enum family family;
};

static __always_inline int is_vlan_proto(__u16 proto)
{
	return proto == ETH_P_8021Q || proto == ETH_P_8021AD;
}

static __always_inline int is_ipv6_ext(__u8 nh)
{
	return nh == IP_PROTO_HOPOPTS || nh == IP_PROTO_ROUTING || nh == IP_PROTO_FRAGMENT ||
	       nh == IP_PROTO_DSTOPTS || nh == IP_PROTO_AH;
}

/* parse_l4 reads the start of the L4 header at off (pkt->l4_proto is set). */
static __always_inline void parse_l4(struct packet *pkt, __u32 off)
{
	void *l4;

	barrier_var(off);
	if (off > MAX_L4_OFF) {
		pkt->flags |= PKT_F_NO_L4 | PKT_F_EXT_LIMIT;
		return;
	}
	l4 = pkt->data + off;
	pkt->l4_off = off;

	switch (pkt->l4_proto) {
	case IP_PROTO_TCP: {
		struct tcp_hdr *th = l4;

		if ((void *)(th + 1) > pkt->data_end)
			break;
		pkt->sport = th->source;
		pkt->dport = th->dest;
		pkt->tcp_flags = th->flags;
		pkt->flags |= PKT_F_PORTS;
		return;
	}
	case IP_PROTO_UDP: {
		struct udp_hdr *uh = l4;

		if ((void *)(uh + 1) > pkt->data_end)
			break;
		pkt->sport = uh->source;
		pkt->dport = uh->dest;
		pkt->flags |= PKT_F_PORTS;
		return;
	}
	case IP_PROTO_SCTP: {
		struct l4_ports *p = l4;

		/* The SCTP common header is 12 bytes; the ports lead it. */
		if (l4 + 12 > pkt->data_end)
			break;
		pkt->sport = p->source;
		pkt->dport = p->dest;
		pkt->flags |= PKT_F_PORTS;
		return;
	}
	case IP_PROTO_ICMP:
	case IP_PROTO_ICMPV6:
		if (l4 + sizeof(struct icmp_hdr) > pkt->data_end)
			break;
		return;
	default:
		return;
	}
	pkt->flags |= PKT_F_L4_TRUNC;
}

static __always_inline enum family parse_ipv4(struct packet *pkt, void *l3)
{
	struct ipv4_hdr *ip = l3;
	__u32 hlen, tot_len;
	__u16 frag;

	if ((void *)(ip + 1) > pkt->data_end)
		return FAMILY_MALFORMED;
	if ((ip->version_ihl >> 4) != 4)
		return FAMILY_MALFORMED;
	hlen = (__u32)(ip->version_ihl & 0x0f) * 4;
	if (hlen < IPV4_MIN_HLEN)
		return FAMILY_MALFORMED;
	if (l3 + hlen > pkt->data_end)
		return FAMILY_MALFORMED;
	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < hlen)
		return FAMILY_MALFORMED;

	pkt->l3_len = tot_len;
	if ((__u32)pkt->l3_off + tot_len > pkt->len)
		pkt->flags |= PKT_F_IP_TRUNC;
	pkt->l4_proto = ip->protocol;
	frag = bpf_ntohs(ip->frag_off);
	if (frag & (IPV4_MF | IPV4_OFFSET_MASK))
		pkt->flags |= PKT_F_FRAGMENT;
	if (frag & IPV4_OFFSET_MASK)
		pkt->flags |= PKT_F_NO_L4;
	else
		parse_l4(pkt, pkt->l3_off + hlen);
	return FAMILY_IPV4;
}

static __always_inline enum family parse_ipv6(struct packet *pkt, void *l3)
{
	struct ipv6_hdr *ip6 = l3;
	__u32 off, l3_len;
	__u8 nh;
	int i, later_fragment = 0;

	if ((void *)(ip6 + 1) > pkt->data_end)
		return FAMILY_MALFORMED;
	if ((bpf_ntohl(ip6->ver_tc_flow) >> 28) != 6)
		return FAMILY_MALFORMED;

	/* In 32 bits: a payload length of 65,496 or more would wrap l3_len
	 * and hide that the frame is cut short. */
	l3_len = IPV6_HLEN + (__u32)bpf_ntohs(ip6->payload_len);
	pkt->l3_len = l3_len;
	if ((__u32)pkt->l3_off + l3_len > pkt->len)
		pkt->flags |= PKT_F_IP_TRUNC;
	else if (!ip6->payload_len && (__u32)pkt->l3_off + IPV6_HLEN < pkt->len)
		pkt->flags |= PKT_F_JUMBO;
	nh = ip6->nexthdr;
	off = pkt->l3_off + IPV6_HLEN;

#pragma unroll
	for (i = 0; i < MAX_IPV6_EXT_HDRS; i++) {
		if (!is_ipv6_ext(nh))
			break;
		barrier_var(off);
		if (off > MAX_L4_OFF)
			break;
		if (nh == IP_PROTO_FRAGMENT) {
			struct ipv6_frag_hdr *fh = pkt->data + off;

			if ((void *)(fh + 1) > pkt->data_end)
				goto truncated;
			pkt->flags |= PKT_F_FRAGMENT;
			if (bpf_ntohs(fh->frag_off) & IPV6_FRAG_OFFSET_MASK)
				later_fragment = 1;
			nh = fh->nexthdr;
			off += sizeof(*fh);
		} else {
			struct ipv6_ext_hdr *eh = pkt->data + off;

			if ((void *)(eh + 1) > pkt->data_end)
				goto truncated;
			if (nh == IP_PROTO_AH)
				off += ((__u32)eh->hdrlen + 2) * 4;
			else
				off += ((__u32)eh->hdrlen + 1) * 8;
			nh = eh->nexthdr;
		}
	}

	pkt->l4_proto = nh;
	if (is_ipv6_ext(nh) || off > MAX_L4_OFF) {
		pkt->flags |= PKT_F_NO_L4 | PKT_F_EXT_LIMIT;
		return FAMILY_IPV6;
	}
	if (later_fragment) {
		pkt->flags |= PKT_F_NO_L4;
		return FAMILY_IPV6;
	}
	parse_l4(pkt, off);
	return FAMILY_IPV6;

truncated:
	pkt->l4_proto = nh;
	pkt->flags |= PKT_F_NO_L4 | PKT_F_L4_TRUNC;
	return FAMILY_IPV6;
}

/*
 * parse_fast fills pkt for the frames most traffic is - untagged IPv6
 * without extension headers, or IPv4 without options, unfragmented,
 * carrying a whole TCP or UDP header - exactly as the general parser
 * below would, and returns 1; for anything else it writes nothing and
 * returns 0. The general parser keeps every field of struct packet live
 * across each of its bounds checks (the values every early exit
 * returns), which costs an IPv6 TCP packet 194 instructions; this path
 * 64 (docs/performance.md, "The parser's fast path").
 */
static __always_inline int parse_fast(void *data, void *data_end, struct packet *pkt)
{
	struct ethhdr *eth = data;
	__u32 len = data_end - data, flags = PKT_F_PORTS;
	__u8 proto, tcp_flags = 0;
	__u32 l3_len; /* struct packet keeps 16 bits; compared in 32, as parse_ipv6 does */
	struct l4_ports *ports;
	enum family family;
	__u16 eth_proto;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6_hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > data_end)
			return 0;
		if ((ip6->ver_tc_flow & bpf_htonl(0xf0000000)) != bpf_htonl(0x60000000))
			return 0;
		proto = ip6->nexthdr;
		ports = (void *)(ip6 + 1);
		l3_len = IPV6_HLEN + (__u32)bpf_ntohs(ip6->payload_len);
		if (ETH_HLEN + l3_len > len)
			flags |= PKT_F_IP_TRUNC;
		else if (!ip6->payload_len && ETH_HLEN + IPV6_HLEN < len)
			flags |= PKT_F_JUMBO;
		family = FAMILY_IPV6;
		eth_proto = ETH_P_IPV6;
	} else if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct ipv4_hdr *ip = data + ETH_HLEN;

		if ((void *)(ip + 1) > data_end)
			return 0;
		if (ip->version_ihl != 0x45 || (ip->frag_off & bpf_htons(IPV4_MF | IPV4_OFFSET_MASK)))
			return 0;
		l3_len = bpf_ntohs(ip->tot_len);
		if (l3_len < IPV4_MIN_HLEN)
			return 0;
		if (ETH_HLEN + l3_len > len)
			flags |= PKT_F_IP_TRUNC;
		proto = ip->protocol;
		ports = (void *)(ip + 1);
		family = FAMILY_IPV4;
		eth_proto = ETH_P_IP;
	} else {
		return 0;
	}
	if (proto == IP_PROTO_TCP) {
		struct tcp_hdr *th = (void *)ports;

		if ((void *)(th + 1) > data_end)
			return 0;
		tcp_flags = th->flags;
	} else if (proto == IP_PROTO_UDP) {
		if ((void *)ports + sizeof(struct udp_hdr) > data_end)
			return 0;
	} else {
		return 0;
	}
	pkt->data = data;
	pkt->data_end = data_end;
	pkt->len = len;
	pkt->eth_proto = eth_proto;
	pkt->l3_off = ETH_HLEN;
	pkt->l4_off = (void *)ports - data;
	pkt->l3_len = l3_len;
	pkt->sport = ports->source;
	pkt->dport = ports->dest;
	pkt->l4_proto = proto;
	pkt->tcp_flags = tcp_flags;
	pkt->vlan_depth = 0;
	pkt->flags = flags;
	pkt->family = family;
	return 1;
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

	if (parse_fast(data, data_end, pkt))
		return pkt->family;
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
