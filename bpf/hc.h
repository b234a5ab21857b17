/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * hc.h - the probe stage: the load balancer's own health probes take the
 * tunnel that data packets take.
 *
 * aird probes a backend by connecting to the service VIP from the node's
 * underlay address with SO_MARK = HC_MARK_MAGIC << HC_MARK_SHIFT | backend
 * id. A policy rule sends marked packets to aird's routing table, whose
 * only routes are "local default dev lo", so they leave through lo without
 * any neighbour resolution for the VIP; this stage runs as a tcx egress
 * program on lo and takes them out of the loopback path:
 *
 *   unmarked packet            TC_ACT_OK, untouched (all other lo traffic)
 *   marked, backend id valid   encapsulated exactly like the lb stage does
 *                              for that backend, then sent out of the egress
 *                              bpf_fib_lookup gives for it: to the next hop
 *                              it resolved (bpf_redirect), or through
 *                              bpf_redirect_neigh while that is unresolved
 *   marked, anything wrong     counted (LB_STAT_HC_*) and dropped: a probe
 *                              that cannot take the tunnel must fail, never
 *                              be delivered locally
 *
 * Encapsulation follows encap.h: IPv6 VIP -> IPv6-in-IPv6, IPv4 VIP with an
 * IPv6 backend -> IPv4-in-IPv6, IPv4 VIP with an IPv4 backend ->
 * IPv4-in-IPv4; the outer source is settings' src6/src4 with the masked
 * bits taken from the flow hash of the probe's flow (same seed), the IPv6
 * flow label is the low 20 bits of the hash, traffic class copied, outer hop
 * limit 64, IPv4 DF and ID 0. The inner hop limit is not decremented: the
 * node originates the probe, it does not forward it.
 *
 * Checksums: a locally generated TCP segment is CHECKSUM_PARTIAL - its
 * checksum field holds only the pseudo-header sum, and the device that
 * sends it (or skb_checksum_help) finishes it. The stage leaves the inner
 * checksum alone and encapsulates with BPF_F_ADJ_ROOM_ENCAP_L3_*, which
 * marks the skb encapsulated and records the inner headers: the uplink then
 * finishes the inner TCP checksum at transmit, in hardware if it offloads
 * checksums of IP-in-IP packets (hw_enc_features), else in software. A veth
 * hands the pending state to its peer, whose stack trusts it; a backend's
 * XDP decap (native or generic) passes the skb on with that state, so the
 * handshake completes (integration/lb_health_tunnel_test.go). Finishing the
 * checksum here would be wrong: BPF cannot clear CHECKSUM_PARTIAL, and the
 * pending finish would then sum the finished value again. Only a hop that
 * turns the skb into a raw frame first (an XDP_REDIRECT forwarder behind a
 * veth uplink) loses the state; there, tx checksumming off on the uplink
 * makes the kernel finish it before the frame leaves.
 *
 * The FIB lookup is done from the ingress perspective of an uplink
 * (hc_conf.fib_ifindex, written by the control plane; lo's own when 0),
 * exactly as for a data packet arriving there, so it needs forwarding on
 * that interface like the lb stage does.
 */
#ifndef AIRD_HC_H
#define AIRD_HC_H

#include "common.h"
#include "csum.h"
#include "encap.h"
#include "flow.h"
#include "lb_maps.h"
#include "pipeline.h"
#include "proto.h"

/* TC verdicts (linux/pkt_cls.h, not vendored). */
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7

/*
 * enum hc_mark is the layout of a probe's socket mark: the magic in the
 * upper 8 bits, the backend id in the lower 24 (lb.max-backends is at most
 * HC_MARK_ID_MASK). Shared with Go (bpf2go).
 */
enum hc_mark {
	HC_MARK_SHIFT = 24,          /* mark >> HC_MARK_SHIFT is the magic */
	HC_MARK_MAGIC = 0xa1,        /* "aird" */
	HC_MARK_ID_MASK = 0xffffff,  /* mark & HC_MARK_ID_MASK is the backend id */
};

/*
 * struct hc_config is the single value of hc_conf, written by the
 * control plane. Pinned and adopted like every map: it only grows into its
 * reserved words.
 */
struct hc_config {
	__u32 fib_ifindex; /* ingress interface for bpf_fib_lookup; 0: lo */
	__u32 reserved[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hc_config);
} hc_conf SEC(".maps");

static __always_inline int hc_drop(__u32 stat)
{
	count_stat(stat);
	return TC_ACT_SHOT;
}

/*
 * struct hc_inner is what the stage reads from the probe packet.
 */
struct hc_inner {
	struct flow_key fk;
	__u32 l3_len;   /* IP length from the header */
	__u32 l4_off;   /* offset of the L4 header from the start of the frame */
	__u8 tc;        /* traffic class / TOS */
	__u8 v6;
	__u16 pad;
};

/* hc_read_inner fills in from the frame; returns 0 or -1 (malformed). */
static __always_inline int hc_read_inner(struct __sk_buff *skb, struct hc_inner *in)
{
	struct l4_ports ports = {};
	__be16 proto;
	__u32 hlen;

	if (bpf_skb_load_bytes(skb, 12, &proto, sizeof(proto)))
		return -1;
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6_hdr ip6;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)))
			return -1;
		if ((bpf_ntohl(ip6.ver_tc_flow) >> 28) != 6)
			return -1;
		__builtin_memcpy(in->fk.src, ip6.saddr, 16);
		__builtin_memcpy(in->fk.dst, ip6.daddr, 16);
		in->fk.proto = ip6.nexthdr;
		in->tc = bpf_ntohl(ip6.ver_tc_flow) >> 20;
		in->l3_len = IPV6_HLEN + bpf_ntohs(ip6.payload_len);
		in->l4_off = ETH_HLEN + IPV6_HLEN;
		in->v6 = 1;
	} else if (proto == bpf_htons(ETH_P_IP)) {
		struct ipv4_hdr ip;
		__u32 *a;

		if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)))
			return -1;
		hlen = (__u32)(ip.version_ihl & 0x0f) * 4;
		if ((ip.version_ihl >> 4) != 4 || hlen < IPV4_MIN_HLEN)
			return -1;
		a = (__u32 *)in->fk.src;
		a[2] = bpf_htonl(0x0000ffff);
		a[3] = ip.saddr;
		a = (__u32 *)in->fk.dst;
		a[2] = bpf_htonl(0x0000ffff);
		a[3] = ip.daddr;
		in->fk.proto = ip.protocol;
		in->tc = ip.tos;
		in->l3_len = bpf_ntohs(ip.tot_len);
		in->l4_off = ETH_HLEN + hlen;
		if (ip.frag_off & bpf_htons(IPV4_MF | IPV4_OFFSET_MASK))
			in->l4_off = 0; /* a fragment: no ports, no checksum to finish */
	} else {
		return -1;
	}
	if (in->l3_len > skb->len - ETH_HLEN)
		return -1;
	if (in->l4_off && (in->fk.proto == IP_PROTO_TCP || in->fk.proto == IP_PROTO_UDP)) {
		if (bpf_skb_load_bytes(skb, in->l4_off, &ports, sizeof(ports)))
			return -1;
		in->fk.sport = ports.source;
		in->fk.dport = ports.dest;
	}
	return 0;
}

/*
 * hc_encap puts the outer header for be in front of the inner packet
 * (room made at the MAC layer, the Ethernet header kept). Returns 0 or an
 * LB_STAT_HC_* reason.
 */
static __always_inline __u32 hc_encap(struct __sk_buff *skb, const struct hc_inner *in, const struct backend *be,
				      const struct pipeline_settings *st, __u64 hash, struct bpf_fib_lookup *fib)
{
	__be32 hbits = (__be32)(hash >> 32);
	__be16 eth_proto;

	if (be->flags & BACKEND_F_IPV4) {
		struct ipv4_hdr h = {
			.version_ihl = 0x45,
			.tos = in->tc,
			.tot_len = bpf_htons(in->l3_len + IPV4_MIN_HLEN),
			.frag_off = bpf_htons(IPV4_DF),
			.ttl = OUTER_HOP_LIMIT,
			.protocol = IP_PROTO_IPIP,
		};

		if (in->v6)
			return LB_STAT_HC_BAD_BACKEND;
		if (!(st->flags & SETTINGS_F_SRC4))
			return LB_STAT_HC_NO_SOURCE;
		h.saddr = (st->src4 & ~st->src4_mask) | (hbits & st->src4_mask);
		__builtin_memcpy(&h.daddr, &be->addr[12], 4);
		h.check = ipv4_csum(&h);
		if (bpf_skb_adjust_room(skb, IPV4_MIN_HLEN, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4))
			return LB_STAT_HC_ERROR;
		if (bpf_skb_store_bytes(skb, ETH_HLEN, &h, sizeof(h), 0))
			return LB_STAT_HC_ERROR;
		eth_proto = bpf_htons(ETH_P_IP);
		fib->family = AF_INET_;
		fib->ipv4_src = h.saddr;
		fib->ipv4_dst = h.daddr;
	} else {
		struct ipv6_hdr h = {
			.payload_len = bpf_htons(in->l3_len),
			.nexthdr = in->v6 ? IP_PROTO_IPV6 : IP_PROTO_IPIP,
			.hop_limit = OUTER_HOP_LIMIT,
		};
		__u32 src6[4];

		if (!(st->flags & SETTINGS_F_SRC6))
			return LB_STAT_HC_NO_SOURCE;
		__builtin_memcpy(src6, st->src6, 16);
		src6[3] = (src6[3] & ~st->src6_mask) | (hbits & st->src6_mask);
		h.ver_tc_flow = bpf_htonl((6U << 28) | ((__u32)in->tc << 20) | ((__u32)hash & 0xfffff));
		__builtin_memcpy(h.saddr, src6, 16);
		__builtin_memcpy(h.daddr, be->addr, 16);
		if (bpf_skb_adjust_room(skb, IPV6_HLEN, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV6))
			return LB_STAT_HC_ERROR;
		if (bpf_skb_store_bytes(skb, ETH_HLEN, &h, sizeof(h), 0))
			return LB_STAT_HC_ERROR;
		eth_proto = bpf_htons(ETH_P_IPV6);
		fib->family = AF_INET6_;
		__builtin_memcpy(fib->ipv6_src, src6, 16);
		__builtin_memcpy(fib->ipv6_dst, be->addr, 16);
	}
	if (bpf_skb_store_bytes(skb, 12, &eth_proto, sizeof(eth_proto), 0))
		return LB_STAT_HC_ERROR;
	return 0;
}

/*
 * hc_redirect_resolved sends the encapsulated probe out of the path the
 * FIB lookup chose, to the next hop it resolved: the lookup's MAC addresses
 * go into the Ethernet header lo's packets carry. Letting the helper route
 * the packet again instead (bpf_redirect_neigh without parameters) is wrong
 * over an ECMP route: its lookup, bound to fib.ifindex, can pick another
 * path's gateway and then resolves that gateway on the wrong device, which
 * never answers - half the probes of a node with two uplinks were lost so.
 */
static __always_inline int hc_redirect_resolved(struct __sk_buff *skb, const struct bpf_fib_lookup *fib)
{
	__u8 macs[12];

	__builtin_memcpy(macs, fib->dmac, 6);
	__builtin_memcpy(&macs[6], fib->smac, 6);
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0))
		return hc_drop(LB_STAT_HC_ERROR);
	return bpf_redirect(fib->ifindex, 0);
}

/* stage_hc tunnels a marked probe packet to its backend (see the top). */
static __always_inline int stage_hc(struct __sk_buff *skb)
{
	struct bpf_fib_lookup fib = {};
	struct hc_inner in = {};
	struct pipeline_settings *st;
	struct hc_config *cfg;
	struct backend *be;
	__u32 mark = skb->mark, id, zero = 0, err;
	__u64 hash;
	long rc;

	if ((mark >> HC_MARK_SHIFT) != HC_MARK_MAGIC)
		return TC_ACT_OK;
	id = mark & HC_MARK_ID_MASK;
	be = bpf_map_lookup_elem(&backends, &id);
	if (!be || !(be->flags & BACKEND_F_VALID))
		return hc_drop(LB_STAT_HC_BAD_BACKEND);
	st = settings_get();
	cfg = bpf_map_lookup_elem(&hc_conf, &zero);
	if (!st || !cfg)
		return hc_drop(LB_STAT_HC_ERROR);
	if (hc_read_inner(skb, &in))
		return hc_drop(LB_STAT_HC_MALFORMED);
	hash = flow_hash(&in.fk, st->hash_seed);

	err = hc_encap(skb, &in, be, st, hash, &fib);
	if (err)
		return hc_drop(err);

	/* tot_len 0: the kernel checks the (GSO-aware) skb against the MTU. */
	fib.ifindex = cfg->fib_ifindex ?: skb->ifindex;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return hc_drop(LB_STAT_HC_FIB);
	skb->mark = 0; /* so the probe rule catches no later lookup */
	count_stat(LB_STAT_HC_ENCAP);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		return hc_redirect_resolved(skb, &fib);
	/*
	 * The next hop is not resolved yet. No next-hop parameters: the
	 * helper then routes the packet itself (out of fib.ifindex) and gives
	 * the skb that route, whose neighbour it resolves. With explicit
	 * parameters the skb would keep lo's local route, and a packet queued
	 * while its next hop is resolved is sent, once resolved, through that
	 * route's neighbour - lo's, with all-zero MAC addresses. (Over an ECMP
	 * route the helper's own lookup may pair one path's gateway with the
	 * other's device; the resolved case below never relies on it.)
	 */
	return bpf_redirect_neigh(fib.ifindex, 0, 0, 0);
}

#endif /* AIRD_HC_H */
