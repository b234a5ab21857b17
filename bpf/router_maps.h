/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * router_maps.h - the maps and value layouts of the router stage: the
 * node's endpoints (containers behind veth pairs, VMs behind taps), which
 * addresses each may send from, and their counters. One writer: the
 * router's control plane (router/ through bpf.Router). Pinning, adoption
 * and layout rules are those of pipeline.h.
 */
#ifndef AIRD_ROUTER_MAPS_H
#define AIRD_ROUTER_MAPS_H

#include "common.h"
#include "pipeline.h"

#define ENDPOINT_MAX 16384        /* endpoint ids: 1 .. ENDPOINT_MAX-1; 0 is "none" */
#define ENDPOINT_ADDRS_MAX 65536  /* entries of endpoints and endpoint_srcs */

/* enum endpoint_flags are the flags of struct endpoint. */
enum endpoint_flags {
	EP_F_DSR = 1 << 0, /* tunnel packets to it whose inner destination is one of its
			    * VIPs are decapsulated here and delivered (direct server return) */
};

/*
 * struct endpoint is an endpoints value: where an address of a local
 * endpoint lives. One entry per address of the endpoint.
 */
struct endpoint {
	__u32 id;            /* indexes endpoint_stats; the key of endpoint_srcs */
	__u32 ifindex;       /* host side of the endpoint's link (veth or tap) */
	__u32 flags;         /* enum endpoint_flags */
	__u8 mac[ETH_ALEN];  /* the endpoint's MAC; all zero: not known yet (the kernel resolves) */
	__u8 host_mac[ETH_ALEN]; /* the host side's MAC */
	__u32 mtu;           /* the link's MTU: larger IP packets go to the kernel */
	__u32 reserved;
};

/* enum endpoint_addr_flags are the flags of an endpoint_srcs value. */
enum endpoint_addr_flags {
	EP_ADDR_F_OWN = 1 << 0, /* the endpoint's own address */
	EP_ADDR_F_VIP = 1 << 1, /* a VIP it serves: a source of its DSR replies, a
				 * destination of tunnel packets it gets decapsulated */
};

/* endpoint_srcs key: an address endpoint id may use. */
struct endpoint_addr_key {
	__u32 id;
	__u8 addr[16];
};

/* struct endpoint_iface is an endpoint_ifaces value: the endpoint behind a host-side interface. */
struct endpoint_iface {
	__u32 id;
	__u32 flags; /* reserved */
};

/* struct endpoint_counters is one endpoint_stats value (per CPU). */
struct endpoint_counters {
	__u64 rx_packets;    /* delivered to the endpoint by XDP */
	__u64 rx_bytes;
	__u64 tx_packets;    /* sent by the endpoint, source checked */
	__u64 tx_bytes;
	__u64 drop_spoofed;  /* sent from an address that is not the endpoint's */
	__u64 drop_decap;    /* tunnel packets to it that it does not decapsulate */
	__u64 reserved[2];
};

/*
 * enum router_stat indexes router_stats (per-CPU __u64 event counts).
 * Shared with Go; append only, below STATS_SLOTS.
 */
enum router_stat {
	ROUTER_STAT_DELIVERED = 0,   /* to a local endpoint, redirected by XDP */
	ROUTER_STAT_FORWARDED,       /* from an endpoint to an uplink, redirected by XDP */
	ROUTER_STAT_DECAP,           /* tunnel packet to an endpoint decapsulated and delivered */
	ROUTER_STAT_TTL_PASS,        /* hop limit exhausted: to the kernel (time exceeded) */
	ROUTER_STAT_NO_MAC_PASS,     /* endpoint's MAC not known yet: to the kernel */
	ROUTER_STAT_NO_NEIGH_PASS,   /* next hop not resolved: to the kernel */
	ROUTER_STAT_KERNEL_PASS,     /* not for the fast path (local, unroutable, not an uplink, ...) */
	ROUTER_STAT_LINK_LOCAL_PASS, /* link-scope packet from an endpoint (NDP, ...): to the kernel */
	ROUTER_STAT_ROUTE_CACHED,    /* forwarded with a cached FIB answer (no lookup) */
	ROUTER_STAT_MAX,
};

/*
 * route_cache: per CPU, direct-mapped by a hash of (source, destination),
 * the FIB's answer for packets endpoints send out of an uplink: a FIB
 * lookup costs more than the rest of the router together. Only answers
 * that forward out of an uplink are cached, for the settings' nexthop_ttl
 * jiffies (as the lb stage's next-hop cache); a colliding pair replaces
 * the entry. Route and neighbour changes apply within that lifetime.
 */
#define ROUTE_CACHE_SIZE 4096 /* a power of two */

struct route_cache_entry {
	__u8 src[16];
	__u8 dst[16];
	__u64 expires;       /* bpf_jiffies64() deadline; 0: empty */
	__u32 ifindex;
	__u32 mtu;           /* the route's MTU: larger packets go to the kernel */
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ROUTE_CACHE_SIZE);
	__type(key, __u32);
	__type(value, struct route_cache_entry);
} route_cache SEC(".maps");

/* endpoints: one of a local endpoint's addresses -> the endpoint. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENDPOINT_ADDRS_MAX);
	__type(key, struct addr_key);
	__type(value, struct endpoint);
} endpoints SEC(".maps");

/* endpoint_srcs: (endpoint id, address) -> enum endpoint_addr_flags. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENDPOINT_ADDRS_MAX);
	__type(key, struct endpoint_addr_key);
	__type(value, __u32);
} endpoint_srcs SEC(".maps");

/* endpoint_ifaces: host-side ifindex -> the endpoint behind it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENDPOINT_MAX);
	__type(key, __u32);
	__type(value, struct endpoint_iface);
} endpoint_ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ENDPOINT_MAX);
	__type(key, __u32);
	__type(value, struct endpoint_counters);
} endpoint_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STATS_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} router_stats SEC(".maps");

static __always_inline void count_router(__u32 stat)
{
	__u64 *c = bpf_map_lookup_elem(&router_stats, &stat);

	if (c)
		*c += 1;
}

static __always_inline struct endpoint_counters *endpoint_counters_of(__u32 id)
{
	return bpf_map_lookup_elem(&endpoint_stats, &id);
}

#endif /* AIRD_ROUTER_MAPS_H */
