/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lb.h - the lb stage: VIP match, conntrack, Maglev, encapsulation.
 *
 * Only untagged IPv4/IPv6 frames are considered (a tagged frame passes on).
 *
 * Service lookup in vips, by destination address:
 *   not a fragment, ports known    (addr, dport, proto), then (addr, 0, proto)
 *                                  unless that entry is VIP_F_FRAGMENTS_ONLY
 *   not a fragment, no ports       (addr, 0, proto) (protocols without ports)
 *   fragment (first or later)      (addr, 0, proto)
 * When nothing matches but the address entry (addr, 0, 0) exists, the
 * packet is a counted drop (no service, fragment, malformed) instead of
 * being passed to the kernel, which does not own the VIP.
 *
 * Flow key and hash: (src, dst, sport, dport, proto). Fragments - every
 * fragment of a datagram, the first one included, since later ones carry no
 * ports - and VIP_F_NO_PORTS services use (src, dst, proto) with zero ports,
 * so all fragments of a datagram meet one backend.
 *
 * Backend choice: conntrack first (skipped for a TCP SYN, which always
 * starts a new flow), else the Maglev table of the vip_id at slot
 * hash % maglev_size, and the choice is recorded in conntrack. A conntrack
 * entry recorded for another vip_id, or pointing at a backend slot that is
 * no longer valid, is ignored and overwritten. So established flows keep
 * their backend when the Maglev table changes, new flows follow the table.
 *
 * ICMP: echo requests to a VIP address are answered (icmp.h). ICMP errors
 * (too big, frag needed, unreachable, time exceeded, parameter problem)
 * whose quoted packet is a VIP flow (quoted source = the VIP) are sent to
 * that flow's backend: the quoted tuple is reversed into the client's flow
 * key, so conntrack or Maglev give the same answer as for the flow itself.
 * They never create conntrack entries.
 */
#ifndef AIRD_LB_H
#define AIRD_LB_H

#include "common.h"
#include "encap.h"
#include "flow.h"
#include "icmp.h"
#include "lb_maps.h"
#include "parse.h"
#include "proto.h"

/* A stage returns STAGE_CONTINUE to let the next stage look at the packet. */
#ifndef STAGE_CONTINUE
#define STAGE_CONTINUE (-1)
#endif

static __always_inline void addr_v4mapped(__u32 *a, __be32 v4)
{
	a[0] = 0;
	a[1] = 0;
	a[2] = bpf_htonl(0x0000ffff);
	a[3] = v4;
}

/* addr_equal compares two 16-byte addresses (4-byte aligned). */
static __always_inline int addr_equal(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3])) == 0;
}

static __always_inline int has_ports(__u8 proto)
{
	return proto == IP_PROTO_TCP || proto == IP_PROTO_UDP || proto == IP_PROTO_SCTP;
}

/*
 * lookup_service finds the service for vk (addr and proto set) and port, or
 * NULL. fragment: the packet carries no reliable port.
 */
static __always_inline struct vip_value *lookup_service(struct vip_key *vk, __be16 port, int fragment)
{
	struct vip_value *vip;

	if (!fragment && port) {
		vk->port = port;
		vip = bpf_map_lookup_elem(&vips, vk);
		if (vip)
			return vip;
	}
	vk->port = 0;
	vip = bpf_map_lookup_elem(&vips, vk);
	if (vip && !fragment && (vip->flags & VIP_F_FRAGMENTS_ONLY))
		return 0;
	return vip;
}

/* is_vip_addr reports whether vk's address has an address entry. */
static __always_inline struct vip_value *lookup_addr_entry(struct vip_key *vk)
{
	vk->port = 0;
	vk->proto = 0;
	return bpf_map_lookup_elem(&vips, vk);
}

/* not_for_service drops reason when the address is a VIP, else continues. */
static __always_inline int not_for_service(struct vip_key *vk, __u32 reason)
{
	if (lookup_addr_entry(vk))
		return drop_packet(reason);
	return STAGE_CONTINUE;
}

static __always_inline int source_allowed(__u32 vip_id, const __u8 *src)
{
	struct allow_key k = {
		.prefixlen = 32 + 128,
		.vip_id = vip_id,
	};

	__builtin_memcpy(k.addr, src, 16);
	return bpf_map_lookup_elem(&allow, &k) != 0;
}

#if CT_LAYOUT == CT_LAYOUT_PERCPU_SETS
static __always_inline int flow_equal(const struct flow_key *a, const struct flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

/* ct_set_of returns this CPU's set for a flow hash. */
static __always_inline struct ct_set *ct_set_of(__u64 hash)
{
	__u32 idx = bpf_get_smp_processor_id() * ct_sets + (__u32)(hash >> 32) % ct_sets;

	return bpf_map_lookup_elem(&conntrack, &idx);
}

/* ct_find returns the way holding fk, or NULL. */
static __always_inline struct ct_entry *ct_find(struct ct_set *s, const struct flow_key *fk)
{
	int w;

#pragma unroll
	for (w = 0; w < CT_WAYS; w++)
		if (s->way[w].last_seen && flow_equal(&s->way[w].key, fk))
			return &s->way[w];
	return 0;
}

/* ct_victim returns the way to (re)write fk into: its own, else an empty
 * one, else the least recently seen. */
static __always_inline struct ct_entry *ct_victim(struct ct_set *s, const struct flow_key *fk, __u64 now)
{
	struct ct_entry *v = &s->way[0];
	__u64 age = 0;
	int w;

#pragma unroll
	for (w = 0; w < CT_WAYS; w++) {
		struct ct_entry *e = &s->way[w];

		if (!e->last_seen || flow_equal(&e->key, fk))
			return e;
		if (now - e->last_seen >= age) {
			age = now - e->last_seen;
			v = e;
		}
	}
	return v;
}
#endif

/*
 * pick_backend chooses the backend for fk and copies it to f->be; returns
 * 0, or a drop reason.
 */
static __always_inline int pick_backend(struct flow_key *fk, __u32 vip_id, int use_ct, int track,
					struct fwd *f)
{
	struct backend *be;
	__u32 slot, id, *bid;
	void *table;
#if CT_LAYOUT == CT_LAYOUT_PERCPU_SETS
	struct ct_set *set = ct_set_of(f->hash);
	struct ct_entry *ce;
	__u64 now = bpf_jiffies64() | 1;

	if (set && use_ct) {
		ce = ct_find(set, fk);
		if (ce && ce->vip_id == vip_id) {
			id = ce->backend_id;
			be = bpf_map_lookup_elem(&backends, &id);
			if (be && (be->flags & BACKEND_F_VALID)) {
				count_stat(LB_STAT_CT_HIT);
				if (ce->last_seen != now)
					ce->last_seen = now;
				f->be = *be;
				f->backend_id = id;
				return 0;
			}
		}
	}
#else
	void *ct = ct_map();
	struct ct_value *cv;

	if (ct && use_ct) {
		cv = bpf_map_lookup_elem(ct, fk);
		if (cv && cv->vip_id == vip_id) {
			id = cv->backend_id;
			be = bpf_map_lookup_elem(&backends, &id);
			if (be && (be->flags & BACKEND_F_VALID)) {
				count_stat(LB_STAT_CT_HIT);
				f->be = *be;
				f->backend_id = id;
				return 0;
			}
		}
	}
#endif
	count_stat(LB_STAT_CT_MISS);
	table = bpf_map_lookup_elem(&maglev, &vip_id);
	if (!table)
		return DROP_NO_BACKEND;
	slot = (__u32)f->hash % maglev_size;
	bid = bpf_map_lookup_elem(table, &slot);
	if (!bid || !*bid)
		return DROP_NO_BACKEND;
	id = *bid;
	be = bpf_map_lookup_elem(&backends, &id);
	if (!be || !(be->flags & BACKEND_F_VALID))
		return DROP_BAD_BACKEND;
	f->be = *be;
	f->backend_id = id;
	if (!track)
		return 0;
#if CT_LAYOUT == CT_LAYOUT_PERCPU_SETS
	if (set) {
		ce = ct_victim(set, fk, now);
		if (ce->last_seen && !flow_equal(&ce->key, fk))
			count_stat(LB_STAT_CT_EVICT);
		ce->key = *fk;
		ce->backend_id = id;
		ce->vip_id = vip_id;
		ce->last_seen = now;
		count_stat(LB_STAT_CT_INSERT);
	}
#else
	if (ct) {
		struct ct_value nv = {.backend_id = id, .vip_id = vip_id};

		if (bpf_map_update_elem(ct, fk, &nv, BPF_ANY))
			count_stat(LB_STAT_CT_INSERT_FAILED);
		else
			count_stat(LB_STAT_CT_INSERT);
	}
#endif
	return 0;
}

/*
 * icmp_quoted_flow fills fk with the client flow an ICMP error (at
 * pkt->l4_off, addressed to vk's address) quotes, and returns the service
 * it belongs to, or NULL when the quote is not a VIP flow. *fragment is set
 * when the quoted packet was a fragment (hashed without ports).
 */
static __always_inline struct vip_value *icmp_quoted_flow(struct packet *pkt, struct vip_key *vk,
							 struct flow_key *fk, int *fragment)
{
	void *data = pkt->data;
	void *data_end = pkt->data_end;
	__u32 off = pkt->l4_off;
	struct l4_ports *ports = 0;
	__u8 proto;

	off += sizeof(struct icmp_hdr);
	barrier_var(off);
	if (off > MAX_L4_OFF)
		return 0;
	if (pkt->family == FAMILY_IPV6) {
		struct ipv6_hdr *in = data + off;

		if ((void *)(in + 1) > data_end)
			return 0;
		if ((bpf_ntohl(in->ver_tc_flow) >> 28) != 6)
			return 0;
		if (!addr_equal(in->saddr, vk->addr))
			return 0;
		proto = in->nexthdr;
		if (proto == IP_PROTO_FRAGMENT) {
			struct ipv6_frag_hdr *fh = (void *)(in + 1);

			if ((void *)(fh + 1) > data_end)
				return 0;
			proto = fh->nexthdr;
			*fragment = 1;
		} else if (is_ipv6_ext(proto)) {
			return 0;
		} else if (has_ports(proto)) {
			ports = (void *)(in + 1);
		}
		/* The quoted packet went VIP -> client: reverse it. */
		__builtin_memcpy(fk->src, in->daddr, 16);
		__builtin_memcpy(fk->dst, in->saddr, 16);
	} else {
		struct ipv4_hdr *in = data + off;
		__u32 hlen;

		if ((void *)(in + 1) > data_end)
			return 0;
		if ((in->version_ihl >> 4) != 4)
			return 0;
		hlen = (__u32)(in->version_ihl & 0x0f) * 4;
		if (hlen < IPV4_MIN_HLEN)
			return 0;
		if (in->saddr != ((__u32 *)vk->addr)[3])
			return 0;
		proto = in->protocol;
		if (in->frag_off & bpf_htons(IPV4_MF | IPV4_OFFSET_MASK))
			*fragment = 1;
		else if (has_ports(proto))
			ports = (void *)in + hlen;
		addr_v4mapped((__u32 *)fk->src, in->daddr);
		addr_v4mapped((__u32 *)fk->dst, in->saddr);
	}
	fk->proto = proto;
	vk->proto = proto;
	if (*fragment || !ports)
		return lookup_service(vk, 0, *fragment);
	if ((void *)(ports + 1) > data_end)
		return 0;
	fk->sport = ports->dest;
	fk->dport = ports->source;
	return lookup_service(vk, ports->source, 0);
}

static __always_inline int is_icmp_error(int v6, __u8 type)
{
	if (v6)
		return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG ||
		       type == ICMPV6_TIME_EXCEEDED || type == ICMPV6_PARAM_PROBLEM;
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAM_PROBLEM;
}

static __always_inline int stage_lb(struct xdp_md *ctx, struct packet *pkt)
{
	void *data = pkt->data;
	void *data_end = pkt->data_end;
	struct vip_key vk = {};
	struct flow_key fk = {};
	struct vip_value *vip;
	struct lb_settings *st;
	struct fwd f = {};
	__u32 zero = 0, vip_id, relayed = 0;
	int v6 = pkt->family == FAMILY_IPV6;
	int fragment = pkt->flags & PKT_F_FRAGMENT;
	int track = 1, use_ct = 1, err;
	__u8 ttl;

	if (pkt->vlan_depth)
		return STAGE_CONTINUE;
	if (v6) {
		struct ipv6_hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > data_end)
			return STAGE_CONTINUE;
		__builtin_memcpy(vk.addr, ip6->daddr, 16);
		__builtin_memcpy(fk.src, ip6->saddr, 16);
		ttl = ip6->hop_limit;
	} else if (pkt->family == FAMILY_IPV4) {
		struct ipv4_hdr *ip = data + ETH_HLEN;

		if ((void *)(ip + 1) > data_end)
			return STAGE_CONTINUE;
		addr_v4mapped((__u32 *)vk.addr, ip->daddr);
		addr_v4mapped((__u32 *)fk.src, ip->saddr);
		ttl = ip->ttl;
	} else {
		return STAGE_CONTINUE;
	}
	__builtin_memcpy(fk.dst, vk.addr, 16);
	vk.proto = pkt->l4_proto;
	fk.proto = pkt->l4_proto;

	if (pkt->flags & PKT_F_NO_L4 && !fragment) {
		return not_for_service(&vk, (pkt->flags & PKT_F_EXT_LIMIT) ? DROP_EXT_HEADERS
									   : DROP_MALFORMED);
	}
	if (pkt->flags & PKT_F_L4_TRUNC)
		return not_for_service(&vk, DROP_MALFORMED);

	if (!fragment && pkt->l4_proto == (v6 ? IP_PROTO_ICMPV6 : IP_PROTO_ICMP)) {
		__u32 off = pkt->l4_off;
		struct icmp_hdr *ic;

		barrier_var(off);
		if (off > MAX_L4_OFF)
			return not_for_service(&vk, DROP_MALFORMED);
		ic = data + off;
		if ((void *)(ic + 1) > data_end)
			return not_for_service(&vk, DROP_MALFORMED);
		if (ic->type == (v6 ? ICMPV6_ECHO_REQUEST : ICMP_ECHO_REQUEST)) {
			vip = lookup_addr_entry(&vk);
			if (!vip)
				return STAGE_CONTINUE;
			if ((vip->flags & VIP_F_ALLOWLIST) && !source_allowed(vip->vip_id, fk.src))
				return drop_packet(DROP_NOT_ALLOWED);
			if (pkt->flags & (PKT_F_IP_TRUNC | PKT_F_JUMBO))
				return drop_packet(DROP_MALFORMED);
			if (v6 && pkt->l4_off != ETH_HLEN + IPV6_HLEN)
				return drop_packet(DROP_EXT_HEADERS);
			count_traffic(&vip_stats, vip->vip_id, pkt->len);
			return icmp_echo_reply(ctx, pkt);
		}
		if (!is_icmp_error(v6, ic->type))
			return STAGE_CONTINUE;
		vip = icmp_quoted_flow(pkt, &vk, &fk, &fragment);
		if (!vip)
			return STAGE_CONTINUE;
		relayed = ic->type == (v6 ? ICMPV6_PKT_TOOBIG : ICMP_DEST_UNREACH) &&
					  (v6 || ic->code == ICMP_FRAG_NEEDED)
				  ? LB_STAT_PTB_RELAYED
				  : LB_STAT_ICMP_RELAYED;
		track = 0;
	} else {
		__be16 port = (pkt->flags & PKT_F_PORTS) ? pkt->dport : 0;

		vip = lookup_service(&vk, port, fragment);
		if (!vip)
			return not_for_service(&vk, fragment ? DROP_FRAGMENT : DROP_NO_SERVICE);
		if (!fragment && (pkt->flags & PKT_F_PORTS) && !(vip->flags & VIP_F_NO_PORTS)) {
			fk.sport = pkt->sport;
			fk.dport = pkt->dport;
		}
		/* A SYN starts a new flow: skip the lookup, record the choice. */
		if ((pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN &&
		    pkt->l4_proto == IP_PROTO_TCP)
			use_ct = 0;
	}
	if (relayed && (vip->flags & VIP_F_NO_PORTS)) {
		fk.sport = 0;
		fk.dport = 0;
	}

	vip_id = vip->vip_id;
	if ((vip->flags & VIP_F_ALLOWLIST) && !source_allowed(vip_id, fk.src))
		return drop_packet(DROP_NOT_ALLOWED);
	if (pkt->flags & (PKT_F_IP_TRUNC | PKT_F_JUMBO))
		return drop_packet(DROP_MALFORMED);
	if (ttl <= 1) {
		count_stat(LB_STAT_TTL_PASS);
		return XDP_PASS;
	}

	st = bpf_map_lookup_elem(&settings, &zero);
	if (!st)
		return drop_packet(DROP_NO_SOURCE);
	f.hash = flow_hash(&fk, st->hash_seed);
	err = pick_backend(&fk, vip_id, use_ct, track, &f);
	if (err)
		return drop_packet(err);
	count_traffic(&vip_stats, vip_id, pkt->len);
	count_traffic(&backend_stats, f.backend_id, pkt->len);
	if (relayed)
		count_stat(relayed);
	f.may_ptb = !relayed;
	return lb_forward(ctx, pkt, &f, st);
}

#endif /* AIRD_LB_H */
