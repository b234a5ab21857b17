/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * proto.h - wire layouts of the headers the parser reads.
 *
 * Defined here, without bitfields, instead of vendoring linux/ip.h and
 * linux/ipv6.h (which need the endian-dependent asm/byteorder.h chain).
 * All multi-byte fields are in network byte order.
 */
#ifndef AIRD_PROTO_H
#define AIRD_PROTO_H

#include "common.h"

/* An 802.1Q / 802.1ad tag, following the outer ethertype. */
struct vlan_tag {
	__be16 tci;
	__be16 encap_proto;
} __attribute__((packed));

/* IPv4 header without options (RFC 791). */
struct ipv4_hdr {
	__u8 version_ihl; /* version << 4 | ihl (32-bit words) */
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off; /* flags << 13 | fragment offset (8-byte units) */
	__u8 ttl;
	__u8 protocol;
	__sum16 check;
	__be32 saddr;
	__be32 daddr;
} __attribute__((packed));

#define IPV4_MIN_HLEN 20
#define IPV4_MF 0x2000
#define IPV4_OFFSET_MASK 0x1fff

/* IPv6 fixed header (RFC 8200). */
struct ipv6_hdr {
	__be32 ver_tc_flow; /* version << 28 | traffic class << 20 | flow label */
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
} __attribute__((packed));

#endif /* AIRD_PROTO_H */
