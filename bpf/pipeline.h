/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * pipeline.h - what every stage of the XDP pipeline shares: the stage
 * protocol, the maps that belong to the whole pipeline and the helpers
 * that count into them.
 *
 * A stage is a static __always_inline function taking the context and the
 * parsed struct packet. It returns a verdict (XDP_TX, XDP_REDIRECT,
 * XDP_DROP, XDP_PASS) to end the pipeline, or STAGE_CONTINUE to let the
 * next stage look. Stages own their maps (lb_maps.h, router_maps.h); the
 * maps here are written by the owner of the pipeline (internal/datapath)
 * and only read or counted into by the stages:
 *
 *   settings      the node's data-plane settings (one value)
 *   node_addrs    the node's own addresses (underlay): tunnel endpoints
 *   tunnel_sources  the prefixes tunnel packets may come from (outer source)
 *   local_addrs   every address of the node's network namespace: what the
 *                 inner packet of a tunnel packet may be addressed to
 *   uplinks       the interfaces the pipeline runs on (ifindex): where a
 *                 stage may redirect a frame to leave the node, and how
 *                 their flows meet CPUs (enum uplink_flags)
 *   pipeline_stats  the pipeline's counters, one per-CPU value (struct
 *                 pipeline_counters): packets/bytes per family (the count
 *                 stage), events (enum lb_stat; decap, lb, probe) and drops
 *                 (enum drop_reason; every stage)
 *
 * Every map is pinned by internal/datapath under <pin>/maps/<name> and
 * adopted by the next aird process when its type, key and value size, max
 * entries and flags still match. So layouts only ever grow by appending
 * (enums) or by taking over reserved space (struct pipeline_settings), and sizes
 * are chosen once, generously. Go types are generated from these
 * definitions (bpf2go -type); never mirror them by hand.
 *
 * Addresses are always 16 bytes: IPv6 as is, IPv4 as IPv4-mapped IPv6
 * (::ffff:a.b.c.d), which is what Go's netip.Addr.As16 returns.
 */
#ifndef AIRD_PIPELINE_H
#define AIRD_PIPELINE_H

#include "common.h"
#include "parse.h"

/* A stage returns STAGE_CONTINUE to let the next stage look at the packet. */
#define STAGE_CONTINUE (-1)

#define NODE_ADDRS_MAX 1024
#define TUNNEL_SOURCES_MAX 4096
#define LOCAL_ADDRS_MAX 65536
#define UPLINKS_MAX 256
#define STATS_SLOTS 64 /* events and drops of struct pipeline_counters: room for appended enums */
#define FAMILY_SLOTS 8 /* families of struct pipeline_counters: room for appended ones */

/* struct addr_key is a map key holding one address. */
struct addr_key {
	__u8 addr[16];
};

/*
 * struct prefix_key is an LPM trie key holding one prefix: prefixlen bits
 * of addr (an IPv4 /n is 96 + n, as the address is IPv4-mapped).
 */
struct prefix_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* enum node_addr_flags are the flags of a node_addrs value. */
enum node_addr_flags {
	NODE_ADDR_F_DECAP = 1 << 0, /* tunnel packets to the address are decapsulated */
};

/* enum settings_flags are the flags of struct pipeline_settings. */
enum settings_flags {
	SETTINGS_F_NO_PTB = 1 << 0, /* do not generate ICMP too big / frag needed */
	SETTINGS_F_SRC6 = 1 << 1,   /* src6 is configured */
	SETTINGS_F_SRC4 = 1 << 2,   /* src4 is configured */
	/*
	 * Every interface aird_xdp runs on is an uplink marked
	 * UPLINK_F_FLOW_AFFINE: a new flow need not look its ingress up in
	 * uplinks (a hash lookup, a kernel call) to skip the cross-CPU steps.
	 */
	SETTINGS_F_UPLINKS_AFFINE = 1 << 3,
	/*
	 * No service is configured (vips is empty): a packet whose first
	 * service probe (its own port) missed goes on to the next stage
	 * without the two probes after it. Router and host traffic on a node
	 * that balances nothing saves about a quarter of its time
	 * (BenchmarkRouterAB, docs/performance.md); a VIP's packets never
	 * read the flag. The control plane sets it only once vips is empty
	 * and clears it before the first service is written.
	 */
	SETTINGS_F_LB_IDLE = 1 << 4,
};

/*
 * struct pipeline_settings is the single value of the settings array, written by
 * the control plane. The outer source address of an encapsulated packet is
 * the configured address with the bits of the mask replaced by bits of the
 * flow hash, so receivers' RSS and ECMP see many sources.
 */
struct pipeline_settings {
	__u8 src6[16];     /* outer IPv6 source */
	__be32 src6_mask;  /* bits of the last 32 bits of src6 taken from the flow hash */
	__be32 src4;       /* outer IPv4 source */
	__be32 src4_mask;  /* bits of src4 taken from the flow hash */
	__u32 flags;       /* enum settings_flags */
	__u32 hash_seed;   /* flow hash seed; must be equal on every LB node */
	__u32 mtu;         /* 0, or the largest outer IP packet to send (besides the FIB MTU) */
	__u32 nexthop_ttl; /* next-hop cache lifetime in jiffies; 0: NEXTHOP_TTL_DEFAULT */
	__u32 flood_rate;   /* new flows per flood_window on one CPU above which it counts
			     * as flooded (LB_STAT_CT_FLOOD); 0: no flood accounting */
	__u32 flood_window; /* jiffies of one flood window (a second); 0: HZ=250's 250 */
	__u32 ct_idle;      /* jiffies after which an established conntrack entry may be
			     * replaced by a new flow; 0: CT_IDLE_DEFAULT */
	__u32 reserved[2];  /* future fields; keeps the value size stable */
};

/* struct counter is a packets/bytes pair (vip_stats, backend_cpu's traffic, ...). */
struct counter {
	__u64 packets;
	__u64 bytes;
};

/* struct family_counter is one family's packets and bytes (struct pipeline_counters). */
struct family_counter {
	__u64 packets;
	__u64 bytes;
};

/*
 * enum lb_stat indexes the events of struct pipeline_counters. Shared
 * with Go; append only, below STATS_SLOTS.
 */
enum lb_stat {
	LB_STAT_CT_HIT = 0,        /* flow found in conntrack */
	LB_STAT_CT_MISS,           /* Maglev chose the backend */
	LB_STAT_CT_INSERT,         /* conntrack entries written */
	LB_STAT_CT_INSERT_FAILED,  /* conntrack update failed */
	LB_STAT_TX,                /* encapsulated, XDP_TX out of the ingress interface */
	LB_STAT_REDIRECT,          /* encapsulated, redirected to another interface */
	LB_STAT_NO_NEIGH_PASS,     /* encapsulated, next hop unresolved: passed to the kernel */
	LB_STAT_TTL_PASS,          /* hop limit exhausted: passed unchanged to the kernel */
	LB_STAT_ICMP_ECHO,         /* echo requests to a VIP answered */
	LB_STAT_PTB_RELAYED,       /* too big / frag needed about a VIP flow sent to its backend */
	LB_STAT_ICMP_RELAYED,      /* other ICMP errors about a VIP flow sent to its backend */
	LB_STAT_PTB_GENERATED,     /* too big / frag needed sent to a client */
	LB_STAT_DECAP_IPV6,        /* IPv6-outer tunnel packets decapsulated */
	LB_STAT_DECAP_IPV4,        /* IPv4-outer tunnel packets decapsulated */
	LB_STAT_CT_EVICT,          /* conntrack inserts that replaced another flow */
	/* The probe stage (hc.h): the load balancer's own health probes. */
	LB_STAT_HC_ENCAP,          /* probe packets encapsulated and sent to their backend */
	LB_STAT_HC_BAD_BACKEND,    /* probe marked with an unknown backend id (or a v6 probe, v4 backend): dropped */
	LB_STAT_HC_NO_SOURCE,      /* probe dropped: no outer source address for the backend's family */
	LB_STAT_HC_FIB,            /* probe dropped: no route to the backend (or forwarding off, too big) */
	LB_STAT_HC_MALFORMED,      /* probe dropped: not a readable IPv4/IPv6 packet */
	LB_STAT_HC_ERROR,          /* probe dropped: encapsulation failed (no room, missing map) */
	/* Conntrack under floods (lb.h, "Conntrack"). */
	LB_STAT_CT_SYN,            /* TCP SYNs balanced by the Maglev table (no entry created) */
	LB_STAT_CT_PROMOTE,        /* flows that became established (their second packet) */
	LB_STAT_CT_FULL,           /* new flows not tracked: their set held only established flows */
	LB_STAT_CT_FLOOD,          /* new-flow packets beyond settings.flood_rate on their CPU */
	LB_STAT_CT_SWEPT,          /* entries of a reused tuple on other CPUs emptied by its SYN */
	LB_STAT_CT_HIT_ELSEWHERE,  /* misses found in another CPU's partition (copied here) */
	LB_STAT_MAX,
};

/*
 * enum drop_reason indexes the drops of struct pipeline_counters. Shared
 * with Go; append only, below STATS_SLOTS.
 */
enum drop_reason {
	DROP_MALFORMED = 0,   /* to a VIP: truncated or inconsistent headers */
	DROP_EXT_HEADERS,     /* to a VIP: IPv6 extension header chain not walkable */
	DROP_NO_SERVICE,      /* to a VIP address: no service for the protocol/port */
	DROP_FRAGMENT,        /* to a VIP address: fragment without a port-0 service */
	DROP_NOT_ALLOWED,     /* source not in the VIP's allow list */
	DROP_NO_BACKEND,      /* no Maglev table for the VIP, or an empty slot */
	DROP_BAD_BACKEND,     /* backend slot invalid, or an IPv6 VIP with an IPv4 backend */
	DROP_NO_SOURCE,       /* no outer source address configured for the family */
	DROP_FIB,             /* FIB lookup failed (unreachable, blackhole, forwarding off) */
	DROP_TOO_BIG,         /* too big to encapsulate and no ICMP may be sent */
	DROP_HEADROOM,        /* bpf_xdp_adjust_head/tail failed */
	DROP_DECAP_MALFORMED, /* tunnel packet to a decap address with a bad inner packet */
	DROP_DECAP_FRAGMENT,  /* fragmented tunnel packet to a decap address */
	DROP_SPOOFED,         /* from an endpoint: source not one of its addresses */
	DROP_ENDPOINT_DECAP,  /* tunnel packet to an endpoint: not one it decapsulates */
	DROP_TUNNEL_SOURCE,   /* tunnel packet to the node or a DSR endpoint from a source
			       * outside tunnel_sources */
	DROP_TUNNEL_DESTINATION, /* tunnel packet to the node whose inner destination is not
				  * the node's (local_addrs, node_addrs, endpoints): never relayed */
	DROP_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pipeline_settings);
} settings SEC(".maps");

/* node_addrs: one of the node's own addresses -> enum node_addr_flags. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, NODE_ADDRS_MAX);
	__type(key, struct addr_key);
	__type(value, __u32);
} node_addrs SEC(".maps");

/*
 * tunnel_sources: a prefix tunnel packets may come from -> 0 (reserved).
 * Written from datapath.tunnel-sources; empty, no tunnel is accepted.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, TUNNEL_SOURCES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct prefix_key);
	__type(value, __u32);
} tunnel_sources SEC(".maps");

/*
 * local_addrs: an address of the node's network namespace (any interface,
 * loopback addresses excepted) -> 0 (reserved). The control plane follows
 * the kernel's addresses (netlink); a backend's VIPs on lo are here.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LOCAL_ADDRS_MAX);
	__type(key, struct addr_key);
	__type(value, __u32);
} local_addrs SEC(".maps");

/*
 * enum uplink_flags are the flags of an uplinks value. UPLINK_F_FLOW_AFFINE:
 * every packet of a flow received on the link is processed on one CPU - a
 * NIC's RSS hashes the flow to one queue, whose interrupt one CPU serves -
 * so a flow never meets another CPU's conntrack partition and the lb
 * stage skips the cross-CPU conntrack steps (lb.h). Without it (veth, tap:
 * XDP runs on the sending CPU) a flow's packets may come from any CPU.
 */
enum uplink_flags {
	UPLINK_F_FLOW_AFFINE = 1 << 0,
};

/* uplinks: ifindex of an interface the pipeline is attached to -> enum uplink_flags. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, UPLINKS_MAX);
	__type(key, __u32);
	__type(value, __u32);
} uplinks SEC(".maps");

/*
 * struct pipeline_counters is the one value of pipeline_stats: every
 * counter of the pipeline, per CPU. Per-CPU, so no atomics; userspace
 * sums the CPUs. Replaces family_stats, lb_stats and drop_stats (three
 * maps); an upgrade adds their counts in (internal/datapath,
 * statsmigrate.go).
 *
 * Where it is looked up: the count stage once for the family; the lb
 * stage once more for a VIP's packet, when it starts balancing it
 * (lb_balance), and that pointer serves every count of the packet from
 * there on - conntrack, encapsulation, TX or redirect - so an established
 * packet counts its family, LB_STAT_CT_HIT and LB_STAT_TX with two
 * lookups. Elsewhere (rare events, drops) count_stat and drop_packet look
 * it up themselves. Keeping the count stage's pointer in struct packet
 * for every stage (one lookup per packet) measured the same for an
 * established packet but cost router traffic 5-8 %: it stays live through
 * the service lookup every packet makes (docs/performance.md, "Per
 * packet").
 */
struct pipeline_counters {
	struct family_counter family[FAMILY_SLOTS]; /* enum family */
	__u64 events[STATS_SLOTS];                  /* enum lb_stat */
	__u64 drops[STATS_SLOTS];                   /* enum drop_reason */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pipeline_counters);
} pipeline_stats SEC(".maps");

_Static_assert(FAMILY_MAX <= FAMILY_SLOTS, "enum family outgrew FAMILY_SLOTS");
_Static_assert(LB_STAT_MAX <= STATS_SLOTS, "enum lb_stat outgrew STATS_SLOTS");
_Static_assert(DROP_MAX <= STATS_SLOTS, "enum drop_reason outgrew STATS_SLOTS");

/*
 * counters_get returns this CPU's pipeline counters. Element 0 of a
 * per-CPU array always exists: NULL only satisfies the verifier.
 */
static __always_inline struct pipeline_counters *counters_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&pipeline_stats, &zero);
}

/* count_stat_in counts one event of enum lb_stat into c. */
static __always_inline void count_stat_in(struct pipeline_counters *c, __u32 stat)
{
	c->events[stat & (STATS_SLOTS - 1)]++;
}

/* drop_packet_in counts a drop of enum drop_reason into c and returns XDP_DROP. */
static __always_inline int drop_packet_in(struct pipeline_counters *c, __u32 reason)
{
	c->drops[reason & (STATS_SLOTS - 1)]++;
	return XDP_DROP;
}

/* count_stat counts one event of enum lb_stat (its own lookup). */
static __always_inline void count_stat(__u32 stat)
{
	struct pipeline_counters *c = counters_get();

	if (c)
		count_stat_in(c, stat);
}

/* drop_packet counts a drop of enum drop_reason (its own lookup) and returns XDP_DROP. */
static __always_inline int drop_packet(__u32 reason)
{
	struct pipeline_counters *c = counters_get();

	if (c)
		drop_packet_in(c, reason);
	return XDP_DROP;
}

/* count_traffic adds one packet of bytes to entry idx of a counter map. */
static __always_inline void count_traffic(void *map, __u32 idx, __u32 bytes)
{
	struct counter *c = bpf_map_lookup_elem(map, &idx);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

/*
 * redirect_to is bpf_redirect as a stage verdict: XDP_REDIRECT, or
 * XDP_ABORTED when the helper refuses. Returning the helper's long as is
 * would let the verifier follow a path where it equals STAGE_CONTINUE into
 * the next stage, after packet pointers were invalidated.
 */
static __always_inline int redirect_to(__u32 ifindex)
{
	return bpf_redirect(ifindex, 0) == XDP_REDIRECT ? XDP_REDIRECT : XDP_ABORTED;
}

/*
 * uplink_flow_affine reports whether ifindex is an uplink whose flows stay
 * on one CPU (UPLINK_F_FLOW_AFFINE); an unknown interface is not.
 */
static __always_inline int uplink_flow_affine(__u32 ifindex)
{
	__u32 *flags = bpf_map_lookup_elem(&uplinks, &ifindex);

	return flags && (*flags & UPLINK_F_FLOW_AFFINE);
}

/* settings_get returns the settings value (always present in an ARRAY). */
static __always_inline struct pipeline_settings *settings_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&settings, &zero);
}

/* addr_v4mapped writes v4 as an IPv4-mapped IPv6 address into a. */
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

/*
 * pkt_addrs fills src and dst (either may be NULL) with the addresses of
 * an untagged IPv4/IPv6 packet; returns -1 for anything else.
 */
static __always_inline int pkt_addrs(const struct packet *pkt, struct addr_key *src, struct addr_key *dst)
{
	void *data = pkt->data;
	void *data_end = pkt->data_end;

	if (pkt->vlan_depth)
		return -1;
	if (pkt->family == FAMILY_IPV6) {
		struct ipv6_hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		if (src)
			__builtin_memcpy(src->addr, ip6->saddr, 16);
		if (dst)
			__builtin_memcpy(dst->addr, ip6->daddr, 16);
		return 0;
	}
	if (pkt->family == FAMILY_IPV4) {
		struct ipv4_hdr *ip = data + ETH_HLEN;

		if ((void *)(ip + 1) > data_end)
			return -1;
		if (src)
			addr_v4mapped((__u32 *)src->addr, ip->saddr);
		if (dst)
			addr_v4mapped((__u32 *)dst->addr, ip->daddr);
		return 0;
	}
	return -1;
}

/* pkt_dst_key fills k with the destination address (see pkt_addrs). */
static __always_inline int pkt_dst_key(const struct packet *pkt, struct addr_key *k)
{
	return pkt_addrs(pkt, 0, k);
}

/*
 * tunnel_source_trusted reports whether the outer source of a tunnel
 * packet lies within tunnel_sources.
 */
static __always_inline int tunnel_source_trusted(const struct packet *pkt)
{
	struct prefix_key k = {.prefixlen = 128};
	struct addr_key src;

	if (pkt_addrs(pkt, &src, 0))
		return 0;
	__builtin_memcpy(k.addr, src.addr, 16);
	return bpf_map_lookup_elem(&tunnel_sources, &k) != 0;
}

#endif /* AIRD_PIPELINE_H */
