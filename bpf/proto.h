/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * proto.h - wire layouts of the headers aird's stages read and write.
 *
 * Defined here, without bitfields, instead of vendoring linux/ip.h,
 * linux/ipv6.h, linux/icmp.h and friends (which need the endian-dependent
 * asm/byteorder.h chain). All multi-byte fields are in network byte order.
 *
 * The structs are not packed: their natural layout has no padding (checked
 * below), and natural alignment lets clang load a 32-bit field with one
 * instruction instead of four byte loads. The verifier accepts such packet
 * loads: it assumes NET_IP_ALIGN, under which the IP header is aligned.
 */
#ifndef AIRD_PROTO_H
#define AIRD_PROTO_H

#include "common.h"

/* IP protocol / IPv6 next header numbers aird looks at. */
#define IP_PROTO_HOPOPTS 0
#define IP_PROTO_ICMP 1
#define IP_PROTO_IPIP 4 /* IPv4 encapsulated */
#define IP_PROTO_TCP 6
#define IP_PROTO_UDP 17
#define IP_PROTO_IPV6 41 /* IPv6 encapsulated */
#define IP_PROTO_ROUTING 43
#define IP_PROTO_FRAGMENT 44
#define IP_PROTO_AH 51
#define IP_PROTO_ICMPV6 58
#define IP_PROTO_DSTOPTS 60
#define IP_PROTO_SCTP 132

#define ETH_ALEN_ 6

/* An 802.1Q / 802.1ad tag, following the outer ethertype. */
struct vlan_tag {
	__be16 tci;
	__be16 encap_proto;
};

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
};

#define IPV4_MIN_HLEN 20
#define IPV4_DF 0x4000
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
};

#define IPV6_HLEN 40
#define IPV6_MIN_MTU 1280

/*
 * The first two bytes of every IPv6 extension header aird walks:
 * hop-by-hop, routing and destination options count hdrlen in 8-byte units
 * beyond the first 8; AH in 4-byte units beyond the first 8.
 */
struct ipv6_ext_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

/* IPv6 fragment header (RFC 8200 section 4.5). */
struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset << 3 | M */
	__be32 id;
};

#define IPV6_FRAG_OFFSET_MASK 0xfff8
#define IPV6_FRAG_MF 0x0001

/* The part of the TCP header aird reads (RFC 9293). */
struct tcp_hdr {
	__be16 source;
	__be16 dest;
	__be32 seq;
	__be32 ack_seq;
	__u8 doff_res;
	__u8 flags;
	__be16 window;
	__sum16 check;
	__be16 urg_ptr;
};

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

struct udp_hdr {
	__be16 source;
	__be16 dest;
	__be16 len;
	__sum16 check;
};

/* The first four bytes of every L4 header with ports (TCP, UDP, SCTP). */
struct l4_ports {
	__be16 source;
	__be16 dest;
};

/*
 * ICMP and ICMPv6 share the 8-byte header layout: type, code, checksum and
 * a 32-bit field (echo: identifier and sequence; too big: the MTU).
 */
struct icmp_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 data;
};

#define ICMP_ECHO_REPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_FRAG_NEEDED 4 /* code of ICMP_DEST_UNREACH */
#define ICMP_ECHO_REQUEST 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAM_PROBLEM 12

#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEEDED 3
#define ICMPV6_PARAM_PROBLEM 4
#define ICMPV6_ECHO_REQUEST 128
#define ICMPV6_ECHO_REPLY 129

_Static_assert(sizeof(struct vlan_tag) == 4, "vlan_tag layout");
_Static_assert(sizeof(struct ipv4_hdr) == 20, "ipv4_hdr layout");
_Static_assert(sizeof(struct ipv6_hdr) == 40, "ipv6_hdr layout");
_Static_assert(sizeof(struct ipv6_ext_hdr) == 2, "ipv6_ext_hdr layout");
_Static_assert(sizeof(struct ipv6_frag_hdr) == 8, "ipv6_frag_hdr layout");
_Static_assert(sizeof(struct tcp_hdr) == 20, "tcp_hdr layout");
_Static_assert(sizeof(struct udp_hdr) == 8, "udp_hdr layout");
_Static_assert(sizeof(struct l4_ports) == 4, "l4_ports layout");
_Static_assert(sizeof(struct icmp_hdr) == 8, "icmp_hdr layout");

#endif /* AIRD_PROTO_H */
