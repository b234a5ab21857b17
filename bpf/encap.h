/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * encap.h - encapsulate a VIP packet to its backend and send it on.
 *
 *   IPv6 VIP                 -> IPv6-in-IPv6 (next header 41)
 *   IPv4 VIP, IPv6 backend   -> IPv4-in-IPv6 (next header 4)
 *   IPv4 VIP, IPv4 backend   -> IPv4-in-IPv4 (protocol 4)
 *
 * The outer source is the configured address (struct pipeline_settings, pipeline.h) with the
 * masked bits taken from the flow hash; the outer IPv6 flow label is the
 * low 20 bits of the hash. The outer hop limit is 64, the traffic class is
 * copied from the inner packet (DSCP and ECN, RFC 6040 normal mode); the
 * IPv4 outer header has DF set and ID 0 (RFC 6864): aird never fragments.
 *
 * The LB is the tunnel entry point of RFC 2473 section 3.1, a forwarding
 * node: it decrements the inner hop limit / TTL (updating the IPv4 header
 * checksum incrementally). Packets that arrive with a hop limit / TTL of 1
 * or 0 are not encapsulated: the lb stage passes them to the kernel, which
 * answers with ICMP time exceeded like any router.
 *
 * The next hop comes from bpf_fib_lookup on the outer destination, with
 * tot_len set so the FIB also checks the egress MTU:
 *
 *   SUCCESS          rewrite the MACs; XDP_TX when the egress is the ingress
 *                    interface, else bpf_redirect to it
 *   NO_NEIGH         encapsulate, keep the received MACs and XDP_PASS: the
 *                    kernel forwards the packet and resolves the neighbour
 *   FRAG_NEEDED      (or longer than settings.mtu) ICMP too big to the
 *                    client (icmp.h), unless disabled or not allowed
 *   anything else    counted drop (DROP_FIB)
 *
 * A successful lookup (egress, MACs, route MTU) is cached per backend and
 * CPU in backend_cpu for settings.nexthop_ttl jiffies: a FIB plus
 * neighbour lookup costs more than the rest of the stage. Failures are
 * never cached, so a missing neighbour or route is looked up again on the
 * next packet. Route or neighbour changes therefore apply within the cache
 * lifetime (25 jiffies by default); rewriting a backend drops its entries.
 */
#ifndef AIRD_ENCAP_H
#define AIRD_ENCAP_H

#include "common.h"
#include "csum.h"
#include "icmp.h"
#include "lb_maps.h"
#include "parse.h"
#include "pipeline.h"
#include "proto.h"

#define AF_INET_ 2
#define AF_INET6_ 10
#define OUTER_HOP_LIMIT 64

/*
 * struct fwd carries what lb_forward needs besides the packet: the chosen
 * backend (copied out of the map) and this CPU's state of it (its next-hop
 * cache), the flow hash and whether the packet may be answered with a
 * generated too-big message.
 */
struct fwd {
	struct backend be;
	__u32 backend_id;
	struct backend_cpu_state *cpu; /* backend_cpu[backend_id] of this CPU, or NULL */
	__u64 hash;
	int may_ptb;
};

/* struct outer is the outer header lb_forward puts in front of a packet. */
struct outer {
	__u32 src6[4] __attribute__((aligned(8))); /* IPv6 outer source (copy_addr) */
	__be32 src4;    /* IPv4 outer source */
	__be32 dst4;    /* IPv4 outer destination */
	__u32 overhead; /* bytes of outer header */
	__u32 len;      /* outer IP length */
	__u32 v4;       /* IPv4-in-IPv4 */
};

/* encap_outer picks the outer header for f->be; returns 0 or a drop reason. */
static __always_inline int encap_outer(const struct packet *pkt, const struct fwd *f, const struct pipeline_settings *st,
				       struct outer *o)
{
	__be32 hbits = (__be32)(f->hash >> 32);
	__u64 mask;

	o->v4 = f->be.flags & BACKEND_F_IPV4;
	o->overhead = o->v4 ? IPV4_MIN_HLEN : IPV6_HLEN;
	o->len = pkt->l3_len + o->overhead;
	if (o->v4) {
		if (pkt->family != FAMILY_IPV4)
			return DROP_BAD_BACKEND;
		if (!(st->flags & SETTINGS_F_SRC4))
			return DROP_NO_SOURCE;
		o->src4 = (st->src4 & ~st->src4_mask) | (hbits & st->src4_mask);
		__builtin_memcpy(&o->dst4, &f->be.addr[12], 4);
		return 0;
	}
	if (!(st->flags & SETTINGS_F_SRC6))
		return DROP_NO_SOURCE;
	/* src6[3] is the high half of the second word (little-endian). */
	mask = (__u64)st->src6_mask << 32;
	store64(o->src6, load64(st->src6));
	store64(&o->src6[2], (load64(st->src6 + 8) & ~mask) | (((__u64)hbits << 32) & mask));
	return 0;
}

/*
 * nexthop_lookup asks the FIB for the next hop of o's outer packet to f's
 * backend, from the ingress interface's point of view, and on success
 * writes the answer into hop with its expiry. Returns the
 * BPF_FIB_LKUP_RET_* code; *mtu is the route MTU on success and on
 * FRAG_NEEDED. Only on a cache miss: the query is built here, not for
 * every packet.
 */
static __always_inline int nexthop_lookup(struct xdp_md *ctx, const struct fwd *f, const struct outer *o,
					  const struct pipeline_settings *st, __u64 now, struct nexthop *hop, __u32 *mtu)
{
	struct bpf_fib_lookup fib = {};
	int rc;

	if (o->v4) {
		fib.family = AF_INET_;
		fib.ipv4_src = o->src4;
		fib.ipv4_dst = o->dst4;
	} else {
		fib.family = AF_INET6_;
		__builtin_memcpy(fib.ipv6_src, o->src6, 16);
		__builtin_memcpy(fib.ipv6_dst, f->be.addr, 16);
	}
	fib.tot_len = o->len;
	fib.ifindex = ctx->ingress_ifindex;
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	/* On success as on FRAG_NEEDED the FIB reports the route MTU. */
	*mtu = fib.mtu_result;
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		hop->ifindex = fib.ifindex;
		hop->mtu = *mtu;
		__builtin_memcpy(hop->dmac, fib.dmac, ETH_ALEN);
		__builtin_memcpy(hop->smac, fib.smac, ETH_ALEN);
		hop->expires = now + (st->nexthop_ttl ?: NEXTHOP_TTL_DEFAULT);
	}
	return rc;
}

/*
 * nexthop_resolve returns the next hop of f's backend and sets *rc to a
 * BPF_FIB_LKUP_RET_* code: the per-CPU cache entry while it is fresh (no
 * copy), else what the FIB says (a success is cached; scratch holds it
 * when there is no cache entry). *mtu is the route MTU on success and on
 * FRAG_NEEDED. The next hop is meaningful for SUCCESS only.
 */
static __always_inline const struct nexthop *nexthop_resolve(struct xdp_md *ctx, const struct fwd *f,
							     const struct outer *o, const struct pipeline_settings *st,
							     struct nexthop *scratch, int *rc, __u32 *mtu)
{
	__u64 now = bpf_jiffies64();
	struct nexthop *nh = f->cpu ? &f->cpu->hop : 0;

	if (nh && now < nh->expires) {
		*mtu = nh->mtu;
		*rc = o->len > nh->mtu ? BPF_FIB_LKUP_RET_FRAG_NEEDED : BPF_FIB_LKUP_RET_SUCCESS;
		return nh;
	}
	if (!nh)
		nh = scratch;
	*rc = nexthop_lookup(ctx, f, o, st, now, nh, mtu);
	return nh;
}

/*
 * encap_too_big answers a packet whose outer packet would exceed mtu (the
 * route's, or the configured one when lower) with a too-big message to
 * the client, or drops it when that may not be sent.
 */
static __always_inline int encap_too_big(struct xdp_md *ctx, struct packet *pkt, const struct fwd *f,
					 const struct pipeline_settings *st, __u32 mtu, __u32 overhead)
{
	if (!f->may_ptb || (st->flags & SETTINGS_F_NO_PTB) || mtu <= overhead || pkt->l3_len < PTB_QUOTE)
		return drop_packet(DROP_TOO_BIG);
	if (pkt->family == FAMILY_IPV4) {
		struct ipv4_hdr *ip = pkt->data + ETH_HLEN;

		if ((void *)(ip + 1) > pkt->data_end)
			return drop_packet(DROP_MALFORMED);
		if (!(ip->frag_off & bpf_htons(IPV4_DF)))
			return drop_packet(DROP_TOO_BIG);
	}
	return icmp_too_big(ctx, pkt, mtu - overhead);
}

/*
 * inner_forward_hop decrements the inner hop limit / TTL (the tunnel entry
 * forwards the packet), and reads its traffic class and, with keep_macs,
 * the received MAC addresses into macs; returns 0 or a drop reason.
 */
static __always_inline int inner_forward_hop(const struct packet *pkt, __u8 *tc, __u8 *macs, int keep_macs)
{
	void *data = pkt->data;
	void *data_end = pkt->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return DROP_MALFORMED;
	if (keep_macs)
		__builtin_memcpy(macs, eth->h_dest, 2 * ETH_ALEN);
	if (pkt->family == FAMILY_IPV6) {
		struct ipv6_hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > data_end)
			return DROP_MALFORMED;
		ip6->hop_limit--;
		*tc = bpf_ntohl(ip6->ver_tc_flow) >> 20;
	} else {
		struct ipv4_hdr *ip = data + ETH_HLEN;
		__u16 old;

		if ((void *)(ip + 1) > data_end)
			return DROP_MALFORMED;
		old = *(__u16 *)&ip->ttl;
		ip->ttl--;
		ip->check = csum_replace2(ip->check, old, *(__u16 *)&ip->ttl);
		*tc = ip->tos;
	}
	return 0;
}

/*
 * The Ethernet header is written with wide stores: struct ethhdr is
 * packed, so copying its fields compiles to a load and a store per byte
 * (26 instructions for the two addresses and the type). The frame's
 * header is not aligned; the verifier accepts unaligned packet stores
 * where the CPU does them efficiently (x86, arm64), which is what aird
 * runs on.
 */
_Static_assert(__builtin_offsetof(struct nexthop, dmac) % 8 == 0 &&
		       __builtin_offsetof(struct nexthop, smac) == __builtin_offsetof(struct nexthop, dmac) + ETH_ALEN,
	       "nexthop: dmac and smac are 12 adjacent bytes from an 8-byte boundary");

/* eth_set_macs writes hop's MAC pair (destination, source) into eth: one 8-byte and one 4-byte store. */
static __always_inline void eth_set_macs(struct ethhdr *eth, const struct nexthop *hop)
{
	const void *macs = (const void *)hop + offsetof(struct nexthop, dmac);

	*(__u64 *)eth = *(const __u64 *)macs;
	*(__u32 *)((void *)eth + 8) = *(const __u32 *)(macs + 8);
}

/* eth_set_proto writes eth's type (host order) as one 2-byte store. */
static __always_inline void eth_set_proto(struct ethhdr *eth, __u16 proto)
{
	*(__be16 *)((void *)eth + 2 * ETH_ALEN) = bpf_htons(proto);
}

/*
 * encap_push drops Ethernet padding behind the IP packet, makes room for
 * the outer header and writes it; returns 0 or a drop reason.
 */
static __always_inline int encap_push(struct xdp_md *ctx, const struct packet *pkt, const struct fwd *f,
				      const struct outer *o, __u8 tc)
{
	void *data, *data_end;
	struct ethhdr *eth;
	int trim = (int)pkt->len - (int)(ETH_HLEN + pkt->l3_len);

	if (trim > 0 && bpf_xdp_adjust_tail(ctx, -trim))
		return DROP_HEADROOM;
	if (bpf_xdp_adjust_head(ctx, -(int)o->overhead))
		return DROP_HEADROOM;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;

	if (o->v4) {
		struct ipv4_hdr *ip = data + ETH_HLEN;
		struct ipv4_hdr h = {
			.version_ihl = 0x45,
			.tos = tc,
			.tot_len = bpf_htons(o->len),
			.frag_off = bpf_htons(IPV4_DF),
			.ttl = OUTER_HOP_LIMIT,
			.protocol = IP_PROTO_IPIP,
			.saddr = o->src4,
			.daddr = o->dst4,
		};

		if ((void *)(ip + 1) > data_end)
			return DROP_HEADROOM;
		h.check = ipv4_csum(&h);
		__builtin_memcpy(ip, &h, sizeof(h));
		eth_set_proto(eth, ETH_P_IP);
	} else {
		struct ipv6_hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > data_end)
			return DROP_HEADROOM;
		ip6->ver_tc_flow = bpf_htonl((6U << 28) | ((__u32)tc << 20) | ((__u32)f->hash & 0xfffff));
		ip6->payload_len = bpf_htons(pkt->l3_len);
		ip6->nexthdr = pkt->family == FAMILY_IPV6 ? IP_PROTO_IPV6 : IP_PROTO_IPIP;
		ip6->hop_limit = OUTER_HOP_LIMIT;
		copy_addr(ip6->saddr, o->src6);
		copy_addr(ip6->daddr, f->be.addr);
		eth_set_proto(eth, ETH_P_IPV6);
	}
	return 0;
}

/*
 * encap_emit sends the encapsulated frame: to the cached/looked-up next
 * hop (XDP_TX on the ingress interface, else redirect), or - next hop not
 * resolved - to the kernel with the received MACs, which routes it.
 */
static __always_inline int encap_emit(struct xdp_md *ctx, int rc, const struct nexthop *hop, const __u8 *macs,
				      struct pipeline_counters *stats)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return drop_packet_in(stats, DROP_HEADROOM);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* Keep the received MACs so the kernel accepts and routes it. */
		__builtin_memcpy(eth->h_dest, macs, 2 * ETH_ALEN);
		count_stat_in(stats, LB_STAT_NO_NEIGH_PASS);
		return XDP_PASS;
	}
	eth_set_macs(eth, hop);
	if (hop->ifindex == ctx->ingress_ifindex) {
		count_stat_in(stats, LB_STAT_TX);
		return XDP_TX;
	}
	count_stat_in(stats, LB_STAT_REDIRECT);
	return redirect_to(hop->ifindex);
}

/*
 * lb_forward encapsulates pkt (untagged, IP length consistent with the
 * frame, hop limit / TTL above 1) to f->be and returns the verdict:
 * outer header, next hop, too-big check, inner hop, push, emit.
 */
static __always_inline int lb_forward(struct xdp_md *ctx, struct packet *pkt, const struct fwd *f,
				      const struct pipeline_settings *st, struct pipeline_counters *c)
{
	const struct nexthop *hop;
	struct nexthop scratch;
	struct outer o;
	__u8 macs[2 * ETH_ALEN];
	__u32 mtu = 0;
	__u8 tc = 0;
	int rc, err;

	err = encap_outer(pkt, f, st, &o);
	if (err)
		return drop_packet_in(c, err);
	hop = nexthop_resolve(ctx, f, &o, st, &scratch, &rc, &mtu);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED || (st->mtu && o.len > st->mtu)) {
		if (rc != BPF_FIB_LKUP_RET_FRAG_NEEDED || (st->mtu && st->mtu < mtu))
			mtu = st->mtu;
		return encap_too_big(ctx, pkt, f, st, mtu, o.overhead);
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return drop_packet_in(c, DROP_FIB);
	err = inner_forward_hop(pkt, &tc, macs, rc == BPF_FIB_LKUP_RET_NO_NEIGH);
	if (!err)
		err = encap_push(ctx, pkt, f, &o, tc);
	if (err)
		return drop_packet_in(c, err);
	return encap_emit(ctx, rc, hop, macs, c);
}


#endif /* AIRD_ENCAP_H */
