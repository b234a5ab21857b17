/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * icmp.h - ICMP built or rewritten in XDP by the lb stage.
 *
 *   icmp_echo_reply   an echo request to a VIP address becomes the reply
 *                     in place (addresses and MACs swapped, checksums
 *                     updated incrementally) and leaves by XDP_TX.
 *   icmp_too_big      a packet too big to encapsulate is turned into an
 *                     ICMPv6 Packet Too Big / ICMPv4 fragmentation needed
 *                     back to the client, quoting the first PTB_QUOTE bytes
 *                     of the packet (RFC 4443 and RFC 1812 allow more than
 *                     the headers; the fixed size lets one bpf_csum_diff
 *                     call sum the quote).
 *
 * Relaying ICMP errors about VIP flows to backends is part of the lb stage
 * (lb.h): those packets are load balanced like the flow they quote.
 */
#ifndef AIRD_ICMP_H
#define AIRD_ICMP_H

#include "common.h"
#include "csum.h"
#include "parse.h"
#include "pipeline.h"
#include "proto.h"

/* Bytes of the offending IP packet quoted in a generated too-big message. */
#define PTB_QUOTE 512

static __always_inline void swap_macs(struct ethhdr *eth)
{
	__u8 tmp[ETH_ALEN];

	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
}

/* The first 16-bit word of an ICMP header (type, code) in memory order. */
static __always_inline __u16 icmp_type_word(__u8 type, __u8 code)
{
	return bpf_htons(((__u16)type << 8) | code);
}

/*
 * icmp_echo_reply answers the echo request in pkt (untagged, not a
 * fragment, ICMP header present, no IPv6 extension headers).
 */
static __always_inline int icmp_echo_reply(struct xdp_md *ctx, struct packet *pkt)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if (pkt->family == FAMILY_IPV6) {
		struct ipv6_hdr *ip6 = data + ETH_HLEN;
		struct icmp_hdr *ic = (void *)(ip6 + 1);
		__u32 *s, *d, t;
		int i;

		if ((void *)(ic + 1) > data_end)
			return XDP_PASS;
		s = (__u32 *)ip6->saddr;
		d = (__u32 *)ip6->daddr;
#pragma unroll
		for (i = 0; i < 4; i++) {
			t = s[i];
			s[i] = d[i];
			d[i] = t;
		}
		ip6->hop_limit = 64;
		/* The pseudo-header sum is symmetric in the addresses. */
		ic->checksum = csum_replace2(ic->checksum, icmp_type_word(ICMPV6_ECHO_REQUEST, ic->code),
					     icmp_type_word(ICMPV6_ECHO_REPLY, ic->code));
		ic->type = ICMPV6_ECHO_REPLY;
	} else {
		struct ipv4_hdr *ip = data + ETH_HLEN;
		struct icmp_hdr *ic;
		__u32 hlen;
		__be32 t;
		__u16 old;

		if ((void *)(ip + 1) > data_end)
			return XDP_PASS;
		hlen = (__u32)(ip->version_ihl & 0x0f) * 4;
		if (hlen < IPV4_MIN_HLEN || hlen > 60)
			return XDP_PASS;
		ic = data + ETH_HLEN + hlen;
		if ((void *)(ic + 1) > data_end)
			return XDP_PASS;
		t = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = t;
		old = *(__u16 *)&ip->ttl;
		ip->ttl = 64;
		ip->check = csum_replace2(ip->check, old, *(__u16 *)&ip->ttl);
		ic->checksum = csum_replace2(ic->checksum, icmp_type_word(ICMP_ECHO_REQUEST, ic->code),
					     icmp_type_word(ICMP_ECHO_REPLY, ic->code));
		ic->type = ICMP_ECHO_REPLY;
	}
	swap_macs(eth);
	count_stat(LB_STAT_ICMP_ECHO);
	return XDP_TX;
}

/* ipv4_csum returns the header checksum of a 20-byte IPv4 header. */
static __always_inline __sum16 ipv4_csum(const struct ipv4_hdr *ip)
{
	__u64 sum = 0;

	CSUM_ADD_WORDS(sum, ip, 5);
	return csum_fold(sum);
}

/*
 * ptb_make_room keeps the Ethernet header and the first PTB_QUOTE bytes of
 * the IP packet and makes room for hdr bytes of IP + ICMP header in front
 * of the quote, with the MAC addresses swapped (the message goes back
 * where the packet came from). Returns 0 or a drop reason.
 */
static __always_inline int ptb_make_room(struct xdp_md *ctx, const struct packet *pkt, int hdr)
{
	void *data = pkt->data;
	void *data_end = pkt->data_end;
	struct ethhdr *eth = data;
	__u8 macs[2 * ETH_ALEN];
	int delta;

	if ((void *)(eth + 1) > data_end)
		return DROP_MALFORMED;
	__builtin_memcpy(macs, eth->h_dest, 2 * ETH_ALEN);
	delta = (int)pkt->len - (ETH_HLEN + PTB_QUOTE);
	if (delta < 0)
		return DROP_TOO_BIG;
	if (delta && bpf_xdp_adjust_tail(ctx, -delta))
		return DROP_HEADROOM;
	if (bpf_xdp_adjust_head(ctx, -hdr))
		return DROP_HEADROOM;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if (data + ETH_HLEN + hdr + PTB_QUOTE > data_end)
		return DROP_HEADROOM;
	__builtin_memcpy(eth->h_dest, macs + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(eth->h_source, macs, ETH_ALEN);
	return 0;
}

/*
 * ptb_write6 writes the IPv6 header and the Packet Too Big message from
 * the VIP (dst of the offending packet) to the client (its src); sum is
 * the checksum of the quote.
 */
static __always_inline void ptb_write6(void *data, const __u32 *src, const __u32 *dst, __u32 mtu, __u64 sum)
{
	struct ethhdr *eth = data;
	struct ipv6_hdr *ip6 = data + ETH_HLEN;
	struct icmp_hdr *ic = (void *)(ip6 + 1);

	eth->h_proto = bpf_htons(ETH_P_IPV6);
	ip6->ver_tc_flow = bpf_htonl(6U << 28);
	ip6->payload_len = bpf_htons(sizeof(struct icmp_hdr) + PTB_QUOTE);
	ip6->nexthdr = IP_PROTO_ICMPV6;
	ip6->hop_limit = 64;
	__builtin_memcpy(ip6->saddr, dst, 16);
	__builtin_memcpy(ip6->daddr, src, 16);
	ic->type = ICMPV6_PKT_TOOBIG;
	ic->code = 0;
	ic->checksum = 0;
	ic->data = bpf_htonl(mtu);
	/* Pseudo-header: addresses, upper-layer length, next header. */
	CSUM_ADD_WORDS(sum, src, 4);
	CSUM_ADD_WORDS(sum, dst, 4);
	sum += bpf_htonl(sizeof(struct icmp_hdr) + PTB_QUOTE);
	sum += bpf_htonl(IP_PROTO_ICMPV6);
	sum += icmp_type_word(ICMPV6_PKT_TOOBIG, 0);
	sum += ic->data;
	ic->checksum = csum_fold(sum);
}

/* ptb_write4 is ptb_write6 for ICMPv4 fragmentation needed. */
static __always_inline void ptb_write4(void *data, __be32 src, __be32 dst, __u32 mtu, __u64 sum)
{
	struct ethhdr *eth = data;
	struct ipv4_hdr *ip = data + ETH_HLEN;
	struct icmp_hdr *ic = (void *)(ip + 1);
	struct ipv4_hdr h = {
		.version_ihl = 0x45,
		.tot_len = bpf_htons(IPV4_MIN_HLEN + sizeof(struct icmp_hdr) + PTB_QUOTE),
		.ttl = 64,
		.protocol = IP_PROTO_ICMP,
		.saddr = dst,
		.daddr = src,
	};

	h.check = ipv4_csum(&h);
	eth->h_proto = bpf_htons(ETH_P_IP);
	__builtin_memcpy(ip, &h, sizeof(h));
	ic->type = ICMP_DEST_UNREACH;
	ic->code = ICMP_FRAG_NEEDED;
	ic->checksum = 0;
	ic->data = bpf_htonl(mtu & 0xffff);
	sum += icmp_type_word(ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED);
	sum += ic->data;
	ic->checksum = csum_fold(sum);
}

/*
 * icmp_too_big replaces the packet in pkt (untagged, at least PTB_QUOTE
 * bytes of IP, not an ICMP error itself) by an ICMPv6 Packet Too Big or an
 * ICMPv4 fragmentation needed announcing mtu, from the VIP to the client,
 * and sends it back where it came from. IPv4 packets without DF are not
 * answered (the caller drops them).
 */
static __always_inline int icmp_too_big(struct xdp_md *ctx, struct packet *pkt, __u32 mtu)
{
	void *data = pkt->data;
	void *data_end = pkt->data_end;
	__u32 src[4] = {}, dst[4] = {};
	int v6 = pkt->family == FAMILY_IPV6;
	int hdr = v6 ? IPV6_HLEN + sizeof(struct icmp_hdr) : IPV4_MIN_HLEN + sizeof(struct icmp_hdr);
	__s64 qsum;
	int err;

	if (v6) {
		struct ipv6_hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > data_end)
			return drop_packet(DROP_MALFORMED);
		__builtin_memcpy(src, ip6->saddr, 16);
		__builtin_memcpy(dst, ip6->daddr, 16);
	} else {
		struct ipv4_hdr *ip = data + ETH_HLEN;

		if ((void *)(ip + 1) > data_end)
			return drop_packet(DROP_MALFORMED);
		src[0] = ip->saddr;
		dst[0] = ip->daddr;
	}
	err = ptb_make_room(ctx, pkt, hdr);
	if (err)
		return drop_packet(err);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + ETH_HLEN + hdr + PTB_QUOTE > data_end)
		return drop_packet(DROP_HEADROOM);
	qsum = bpf_csum_diff(0, 0, data + ETH_HLEN + hdr, PTB_QUOTE, 0);
	if (qsum < 0)
		return drop_packet(DROP_HEADROOM);
	if (v6)
		ptb_write6(data, src, dst, mtu, (__u32)qsum);
	else
		ptb_write4(data, src[0], dst[0], mtu, (__u32)qsum);
	count_stat(LB_STAT_PTB_GENERATED);
	return XDP_TX;
}

#endif /* AIRD_ICMP_H */
