/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * router.h - the router stage: the node's endpoints (containers, VMs) and
 * their traffic, routed natively in XDP.
 *
 * On an uplink (stage_router, after decap and lb):
 *   to a local endpoint's address      hop limit decremented, MACs set to the
 *                                      endpoint's, bpf_redirect to its host-side
 *                                      interface (veth or tap)
 *   IP6IP6/4in6/IPIP to an endpoint    (EP_F_DSR only) decapsulated when the
 *   with EP_F_DSR                      outer source is in tunnel_sources and the
 *                                      inner destination is one of its VIPs, and
 *                                      delivered (direct server return); any
 *                                      other tunnel packet to it is dropped
 *   anything else                      not the stage's: XDP_PASS
 *
 * From an endpoint (stage_endpoint, the program on its host-side link):
 *   link-scope (ARP, NDP, multicast, link-local destination)  to the kernel
 *   source not one of its addresses or VIPs                   dropped, counted
 *   to another local endpoint          delivered as above
 *   elsewhere                          bpf_fib_lookup (following the ECMP routes
 *                                      BGP installed); out of an uplink: hop
 *                                      limit decremented, MACs from the FIB,
 *                                      bpf_redirect to it
 *
 * Whatever the fast path does not handle goes to the kernel unchanged,
 * which forwards it along the same routes (aird installs a route and a
 * neighbour entry per endpoint address): hop limit 1 (time exceeded), no
 * resolved neighbour, an endpoint MAC not known yet, a packet larger than
 * the endpoint's MTU, a destination the FIB says is local or unreachable,
 * an egress interface that is not an uplink.
 */
#ifndef AIRD_ROUTER_H
#define AIRD_ROUTER_H

#include "common.h"
#include "csum.h"
#include "decap.h"
#include "flow.h"
#include "parse.h"
#include "pipeline.h"
#include "proto.h"
#include "router_maps.h"

#define AF_INET_R 2
#define AF_INET6_R 10
#define NEXTHOP_TTL_DEFAULT_R 25 /* jiffies, as the lb stage's next-hop cache */

/* mac_zero reports whether a MAC address is all zero (unknown). */
static __always_inline int mac_zero(const __u8 *m)
{
	return (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0;
}

/*
 * hop_decrement decrements the hop limit / TTL of the (untagged) IP packet
 * in pkt, updating the IPv4 header checksum. Returns -1, changing nothing,
 * when the hop limit is 1 or 0: the kernel must answer with time exceeded.
 */
static __always_inline int hop_decrement(const struct packet *pkt)
{
	void *data = pkt->data;
	void *data_end = pkt->data_end;

	if (pkt->family == FAMILY_IPV6) {
		struct ipv6_hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > data_end || ip6->hop_limit <= 1)
			return -1;
		ip6->hop_limit--;
		return 0;
	}
	if (pkt->family == FAMILY_IPV4) {
		struct ipv4_hdr *ip = data + ETH_HLEN;
		__u16 old;

		if ((void *)(ip + 1) > data_end || ip->ttl <= 1)
			return -1;
		old = *(__u16 *)&ip->ttl;
		ip->ttl--;
		ip->check = csum_replace2(ip->check, old, *(__u16 *)&ip->ttl);
		return 0;
	}
	return -1;
}

/* hop_exhausted reports whether the packet's hop limit / TTL is 1 or 0. */
static __always_inline int hop_exhausted(const struct packet *pkt)
{
	if (pkt->family == FAMILY_IPV6) {
		struct ipv6_hdr *ip6 = pkt->data + ETH_HLEN;

		return (void *)(ip6 + 1) > pkt->data_end || ip6->hop_limit <= 1;
	}
	{
		struct ipv4_hdr *ip = pkt->data + ETH_HLEN;

		return (void *)(ip + 1) > pkt->data_end || ip->ttl <= 1;
	}
}

/* set_macs writes the Ethernet addresses of the frame at the start of ctx. */
static __always_inline int set_macs(struct xdp_md *ctx, const __u8 *dst, const __u8 *src)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, dst, ETH_ALEN);
	__builtin_memcpy(eth->h_source, src, ETH_ALEN);
	return 0;
}

/* count_endpoint adds a packet to endpoint id's rx (rx != 0) or tx counters. */
static __always_inline void count_endpoint(__u32 id, int rx, __u32 bytes)
{
	struct endpoint_counters *c = endpoint_counters_of(id);

	if (!c)
		return;
	if (rx) {
		c->rx_packets++;
		c->rx_bytes += bytes;
	} else {
		c->tx_packets++;
		c->tx_bytes += bytes;
	}
}

/*
 * router_deliver sends pkt, an IP packet to local endpoint ep, out of the
 * endpoint's link, or to the kernel when the fast path cannot.
 */
static __always_inline int router_deliver(struct xdp_md *ctx, const struct packet *pkt, const struct endpoint *ep)
{
	struct endpoint e = *ep;

	if (pkt->flags & (PKT_F_IP_TRUNC | PKT_F_JUMBO) || (__u32)pkt->l3_len > e.mtu) {
		count_router(ROUTER_STAT_KERNEL_PASS);
		return XDP_PASS;
	}
	if (mac_zero(e.mac)) {
		count_router(ROUTER_STAT_NO_MAC_PASS);
		return XDP_PASS;
	}
	if (hop_decrement(pkt)) {
		count_router(ROUTER_STAT_TTL_PASS);
		return XDP_PASS;
	}
	if (set_macs(ctx, e.mac, e.host_mac))
		return drop_packet(DROP_MALFORMED);
	count_endpoint(e.id, 1, pkt->len);
	count_router(ROUTER_STAT_DELIVERED);
	return redirect_to(e.ifindex);
}

/*
 * router_decap handles a tunnel packet to an EP_F_DSR endpoint: the inner
 * packet, to one of the endpoint's VIPs, is delivered to it (the load
 * balancer decremented its hop limit already: the tunnel exit does not).
 */
static __always_inline int router_decap(struct xdp_md *ctx, struct packet *pkt, const struct endpoint *ep)
{
	struct endpoint_addr_key k = {.id = ep->id};
	struct endpoint e = *ep;
	struct addr_key inner = {};
	struct endpoint_counters *c;
	__u32 *flags, len;
	__u16 inner_proto;
	int err;

	if (!tunnel_source_trusted(pkt)) {
		c = endpoint_counters_of(e.id);
		if (c)
			c->drop_decap++;
		return drop_packet(DROP_TUNNEL_SOURCE);
	}
	if (pkt->flags & PKT_F_FRAGMENT)
		return drop_packet(DROP_DECAP_FRAGMENT);
	inner_proto = decap_inner(pkt);
	if (!inner_proto)
		return drop_packet(DROP_DECAP_MALFORMED);
	if (inner_dst_key(pkt, inner_proto, &inner))
		return drop_packet(DROP_DECAP_MALFORMED);
	__builtin_memcpy(k.addr, inner.addr, 16);
	flags = bpf_map_lookup_elem(&endpoint_srcs, &k);
	if (!flags || !(*flags & EP_ADDR_F_VIP)) {
		c = endpoint_counters_of(e.id);
		if (c)
			c->drop_decap++;
		return drop_packet(DROP_ENDPOINT_DECAP);
	}
	if (mac_zero(e.mac)) {
		count_router(ROUTER_STAT_NO_MAC_PASS);
		return XDP_PASS;
	}
	len = pkt->len - (pkt->l4_off - ETH_HLEN);
	err = decap_strip(ctx, pkt, inner_proto);
	if (err)
		return drop_packet(err);
	if (set_macs(ctx, e.mac, e.host_mac))
		return drop_packet(DROP_HEADROOM);
	count_endpoint(e.id, 1, len);
	count_router(ROUTER_STAT_DECAP);
	return redirect_to(e.ifindex);
}

/* stage_router: packets from an uplink to a local endpoint. */
static __always_inline int stage_router(struct xdp_md *ctx, struct packet *pkt)
{
	struct addr_key dst = {};
	struct endpoint *ep;

	if (pkt_dst_key(pkt, &dst))
		return STAGE_CONTINUE;
	ep = bpf_map_lookup_elem(&endpoints, &dst);
	if (!ep)
		return STAGE_CONTINUE;
	if ((ep->flags & EP_F_DSR) && (pkt->l4_proto == IP_PROTO_IPV6 || pkt->l4_proto == IP_PROTO_IPIP))
		return router_decap(ctx, pkt, ep);
	return router_deliver(ctx, pkt, ep);
}

/* struct flow_addrs are the addresses of an IP packet as map keys. */
struct flow_addrs {
	struct addr_key src;
	struct addr_key dst;
};

/* read_addrs fills a from an untagged IPv4/IPv6 packet; -1 otherwise. */
static __always_inline int read_addrs(const struct packet *pkt, struct flow_addrs *a)
{
	return pkt_addrs(pkt, &a->src, &a->dst);
}

/*
 * link_scope reports whether a destination stays on the link: IPv6
 * multicast or link-local unicast, IPv4 multicast, limited broadcast or
 * link-local (169.254/16).
 */
static __always_inline int link_scope(const struct addr_key *dst, int v6)
{
	const __u8 *a = dst->addr;

	if (v6)
		return a[0] == 0xff || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80);
	return (a[12] & 0xf0) == 0xe0 || (a[12] == 169 && a[13] == 254) ||
	       (a[12] == 0xff && a[13] == 0xff && a[14] == 0xff && a[15] == 0xff);
}

/* route_slot returns the route_cache slot of (src, dst). */
static __always_inline __u32 route_slot(const struct flow_addrs *a)
{
	const __u64 *s = (const __u64 *)a->src.addr, *d = (const __u64 *)a->dst.addr;
	__u64 h = (s[0] ^ d[0]) * FLOW_HASH_MUL;

	h = (h ^ s[1] ^ d[1] ^ (h >> 29)) * FLOW_HASH_MUL;
	return (__u32)(h >> 32) & (ROUTE_CACHE_SIZE - 1);
}

/* addrs_equal compares a cache entry's addresses with a's. */
static __always_inline int route_matches(const struct route_cache_entry *r, const struct flow_addrs *a)
{
	return addr_equal(r->src, a->src.addr) && addr_equal(r->dst, a->dst.addr);
}

/*
 * route_lookup fills hop with where pkt (from an endpoint, addresses a)
 * leaves: from this CPU's route cache, else from the FIB, caching an
 * answer that forwards out of an uplink. Returns the BPF_FIB_LKUP_RET_*
 * code, or -1 for an answer the fast path does not take (not an uplink).
 */
static __always_inline int route_lookup(struct xdp_md *ctx, const struct packet *pkt, const struct flow_addrs *a,
					struct route_cache_entry *hop)
{
	struct bpf_fib_lookup fib = {};
	struct route_cache_entry *c;
	struct pipeline_settings *st;
	__u32 slot = route_slot(a);
	__u64 now = bpf_jiffies64();
	int rc;

	c = bpf_map_lookup_elem(&route_cache, &slot);
	if (c && now < c->expires && route_matches(c, a)) {
		*hop = *c;
		count_router(ROUTER_STAT_ROUTE_CACHED);
		return (__u32)pkt->l3_len > hop->mtu ? BPF_FIB_LKUP_RET_FRAG_NEEDED : BPF_FIB_LKUP_RET_SUCCESS;
	}
	if (pkt->family == FAMILY_IPV6) {
		fib.family = AF_INET6_R;
		__builtin_memcpy(fib.ipv6_src, a->src.addr, 16);
		__builtin_memcpy(fib.ipv6_dst, a->dst.addr, 16);
	} else {
		fib.family = AF_INET_R;
		__builtin_memcpy(&fib.ipv4_src, &a->src.addr[12], 4);
		__builtin_memcpy(&fib.ipv4_dst, &a->dst.addr[12], 4);
	}
	fib.l4_protocol = pkt->l4_proto;
	if (pkt->flags & PKT_F_PORTS) {
		fib.sport = pkt->sport;
		fib.dport = pkt->dport;
	}
	fib.tot_len = pkt->l3_len;
	fib.ifindex = ctx->ingress_ifindex;
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return rc;
	if (!bpf_map_lookup_elem(&uplinks, &fib.ifindex))
		return -1;
	__builtin_memcpy(hop->src, a->src.addr, 16);
	__builtin_memcpy(hop->dst, a->dst.addr, 16);
	hop->ifindex = fib.ifindex;
	hop->mtu = fib.mtu_result;
	__builtin_memcpy(hop->dmac, fib.dmac, ETH_ALEN);
	__builtin_memcpy(hop->smac, fib.smac, ETH_ALEN);
	st = settings_get();
	hop->expires = now + (st && st->nexthop_ttl ? st->nexthop_ttl : NEXTHOP_TTL_DEFAULT_R);
	if (c)
		*c = *hop;
	return rc;
}

/*
 * router_forward routes a packet an endpoint sent (source checked): to a
 * local endpoint, or out of the uplink the FIB gives.
 */
static __always_inline int router_forward(struct xdp_md *ctx, struct packet *pkt, const struct flow_addrs *a)
{
	struct route_cache_entry hop = {};
	struct endpoint *ep;
	int rc;

	if (pkt->flags & (PKT_F_IP_TRUNC | PKT_F_JUMBO)) {
		count_router(ROUTER_STAT_KERNEL_PASS);
		return XDP_PASS;
	}
	ep = bpf_map_lookup_elem(&endpoints, &a->dst);
	if (ep)
		return router_deliver(ctx, pkt, ep);
	if (hop_exhausted(pkt)) {
		count_router(ROUTER_STAT_TTL_PASS);
		return XDP_PASS;
	}
	rc = route_lookup(ctx, pkt, a, &hop);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		count_router(ROUTER_STAT_NO_NEIGH_PASS);
		return XDP_PASS;
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		count_router(ROUTER_STAT_KERNEL_PASS);
		return XDP_PASS;
	}
	if (hop_decrement(pkt))
		return drop_packet(DROP_MALFORMED); /* checked above: not reached */
	if (set_macs(ctx, hop.dmac, hop.smac))
		return drop_packet(DROP_MALFORMED);
	count_router(ROUTER_STAT_FORWARDED);
	return redirect_to(hop.ifindex);
}

/*
 * stage_endpoint runs on the host side of an endpoint's link, on what the
 * endpoint sends: link-scope traffic to the kernel, spoofed sources
 * dropped, the rest routed.
 */
static __always_inline int stage_endpoint(struct xdp_md *ctx, struct packet *pkt)
{
	struct endpoint_addr_key k = {};
	struct endpoint_iface *ei;
	struct endpoint_counters *c;
	struct flow_addrs a = {};
	__u32 ifindex = ctx->ingress_ifindex, id;
	__u32 *flags;

	ei = bpf_map_lookup_elem(&endpoint_ifaces, &ifindex);
	if (!ei)
		return XDP_PASS;
	id = ei->id;
	if (read_addrs(pkt, &a) || link_scope(&a.dst, pkt->family == FAMILY_IPV6)) {
		count_router(ROUTER_STAT_LINK_LOCAL_PASS);
		return XDP_PASS;
	}
	k.id = id;
	__builtin_memcpy(k.addr, a.src.addr, 16);
	flags = bpf_map_lookup_elem(&endpoint_srcs, &k);
	if (!flags) {
		c = endpoint_counters_of(id);
		if (c)
			c->drop_spoofed++;
		return drop_packet(DROP_SPOOFED);
	}
	count_endpoint(id, 0, pkt->len);
	return router_forward(ctx, pkt, &a);
}

#endif /* AIRD_ROUTER_H */
