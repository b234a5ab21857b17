/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lb_maps.h - the maps and map value layouts of the decap and lb stages.
 *
 * Every map here is pinned by internal/datapath under <pin>/maps/<name> and
 * adopted by the next aird process when its type, key and value size, max
 * entries and flags still match. So layouts only ever grow by appending
 * (enums) or by taking over reserved space (struct lb_settings), and sizes are
 * chosen once, generously. Go types are generated from these definitions
 * (bpf2go -type); never mirror them by hand.
 *
 * Addresses are always 16 bytes: IPv6 as is, IPv4 as IPv4-mapped IPv6
 * (::ffff:a.b.c.d), which is what Go's netip.Addr.As16 returns.
 */
#ifndef AIRD_LB_MAPS_H
#define AIRD_LB_MAPS_H

#include "common.h"
#include "flow.h"

#define VIP_MAX 16384           /* vip ids: 0 .. VIP_MAX-1 */
#define VIP_ENTRIES 65536       /* entries of vips (services and address entries) */
#define BACKEND_MAX 16384       /* backend ids: 1 .. BACKEND_MAX-1; 0 is "none" */
#define MAGLEV_DEFAULT_SIZE 65537
#define CONNTRACK_DEFAULT_SIZE 65536
#define ALLOW_MAX 65536
#define DECAP_ADDRS_MAX 1024
#define STATS_SLOTS 64          /* lb_stats and drop_stats: room for appended enums */

/*
 * vips key. A service is (VIP address, port, protocol); port 0 is a
 * VIP-wide service for the protocol (all ports, and all fragments). The
 * address entry (port 0, proto 0) marks the address as a VIP: echo requests
 * to it are answered and traffic to it that matches no service is dropped
 * instead of being passed to the kernel.
 */
struct vip_key {
	__u8 addr[16];
	__be16 port;
	__u8 proto;
	__u8 pad;
};

/* enum vip_flags are the flags of a vips value. */
enum vip_flags {
	VIP_F_ALLOWLIST = 1 << 0,      /* sources must match allow for vip_id */
	VIP_F_NO_PORTS = 1 << 1,       /* hash and track on (src, dst, proto): client affinity */
	VIP_F_FRAGMENTS_ONLY = 1 << 2, /* a port-0 entry that serves only fragments */
};

struct vip_value {
	__u32 vip_id; /* indexes maglev, vip_stats and allow; < VIP_MAX */
	__u32 flags;  /* enum vip_flags */
};

/* enum backend_flags are the flags of a backends value. */
enum backend_flags {
	BACKEND_F_VALID = 1 << 0, /* the slot holds a backend */
	BACKEND_F_IPV4 = 1 << 1,  /* addr is IPv4-mapped: use an IPv4 outer header */
};

struct backend {
	__u8 addr[16];
	__u32 flags; /* enum backend_flags */
};

/* conntrack value: the backend a flow was sent to, and by which VIP. */
struct ct_value {
	__u32 backend_id;
	__u32 vip_id; /* an entry of another vip_id (VIP re-created) is ignored */
};

/*
 * allow key: an LPM trie keyed by vip_id, then the source address. Every
 * entry's prefixlen covers the 32 bits of vip_id plus the address prefix
 * (IPv4 /n: 32 + 96 + n, as the address is IPv4-mapped).
 */
struct allow_key {
	__u32 prefixlen;
	__u32 vip_id;
	__u8 addr[16];
};

/* decap_addrs key: one of the node's underlay addresses. */
struct decap_key {
	__u8 addr[16];
};

/* enum settings_flags are the flags of struct lb_settings. */
enum settings_flags {
	SETTINGS_F_NO_PTB = 1 << 0, /* do not generate ICMP too big / frag needed */
	SETTINGS_F_SRC6 = 1 << 1,   /* src6 is configured */
	SETTINGS_F_SRC4 = 1 << 2,   /* src4 is configured */
};

/*
 * struct lb_settings is the single value of the settings array, written by the
 * control plane. The outer source address of an encapsulated packet is the
 * configured address with the bits of the mask replaced by bits of the
 * flow hash, so receivers' RSS and ECMP see many sources.
 */
struct lb_settings {
	__u8 src6[16];     /* outer IPv6 source */
	__be32 src6_mask;  /* bits of the last 32 bits of src6 taken from the flow hash */
	__be32 src4;       /* outer IPv4 source */
	__be32 src4_mask;  /* bits of src4 taken from the flow hash */
	__u32 flags;       /* enum settings_flags */
	__u32 hash_seed;   /* flow hash seed; must be equal on every LB node */
	__u32 mtu;         /* 0, or the largest outer IP packet to send (besides the FIB MTU) */
	__u32 nexthop_ttl; /* next-hop cache lifetime in jiffies; 0: NEXTHOP_TTL_DEFAULT */
	__u32 reserved[5]; /* future fields; keeps the value size stable */
};

/* 25 jiffies: 25 ms (HZ=1000) to 250 ms (HZ=100). */
#define NEXTHOP_TTL_DEFAULT 25

/*
 * struct nexthop caches, per CPU and backend, what bpf_fib_lookup said
 * about the backend's address: a full FIB and neighbour lookup costs more
 * than the rest of the lb stage together. Only successful lookups are
 * cached, for lb_settings.nexthop_ttl jiffies (bpf_jiffies64 is inlined by
 * the verifier, a clock helper is not); the control plane clears an entry
 * when it changes the backend.
 */
struct nexthop {
	__u64 expires;       /* bpf_jiffies64() deadline; 0: empty */
	__u32 ifindex;       /* egress interface */
	__u32 mtu;           /* route MTU: the largest outer IP packet */
	__u8 dmac[ETH_ALEN]; /* next hop's MAC */
	__u8 smac[ETH_ALEN]; /* egress interface's MAC */
	__u32 pad;
};

/* struct counter is a packets/bytes pair (vip_stats, backend_stats). */
struct counter {
	__u64 packets;
	__u64 bytes;
};

/*
 * enum lb_stat indexes lb_stats (per-CPU __u64 event counts). Shared with
 * Go; append only, below STATS_SLOTS.
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
	LB_STAT_MAX,
};

/*
 * enum drop_reason indexes drop_stats (per-CPU __u64). Shared with Go;
 * append only, below STATS_SLOTS.
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
	DROP_MAX,
};

/* Outer ARRAY_OF_MAPS: vip_id -> Maglev table (slot -> backend id). */
struct maglev_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	/* Replaced at load time with the configured table size. */
	__uint(max_entries, MAGLEV_DEFAULT_SIZE);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIP_ENTRIES);
	__type(key, struct vip_key);
	__type(value, struct vip_value);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, VIP_MAX);
	__type(key, __u32);
	__array(values, struct maglev_table);
} maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BACKEND_MAX);
	__type(key, __u32);
	__type(value, struct backend);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, ALLOW_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct allow_key);
	__type(value, __u32);
} allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_settings);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DECAP_ADDRS_MAX);
	__type(key, struct decap_key);
	__type(value, __u32);
} decap_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BACKEND_MAX);
	__type(key, __u32);
	__type(value, struct nexthop);
} nexthops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIP_MAX);
	__type(key, __u32);
	__type(value, struct counter);
} vip_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BACKEND_MAX);
	__type(key, __u32);
	__type(value, struct counter);
} backend_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STATS_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} lb_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STATS_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} drop_stats SEC(".maps");

/*
 * conntrack: flow -> backend. The layout was chosen by measurement (see
 * docs/performance.md): per-CPU partitions of 4-way sets in one ARRAY. A
 * lookup is one inlined array access and at most four key compares; an
 * insert is a few stores - no helper call, no lock, no allocation, where a
 * kernel hash map update costs several times the whole rest of the stage.
 * The set is chosen by the flow hash, the partition by the CPU: XDP runs
 * a flow on the CPU of its RSS queue, and a flow that moves (RSS or IRQ
 * affinity changed) is simply not found there and takes the Maglev table
 * again, like with Katran's per-CPU LRU maps. Within a set the least
 * recently seen flow is replaced. bench/ct-layouts.sh builds the measured
 * alternatives with -DCT_LAYOUT=n.
 */
#define CT_LAYOUT_COMMON_LRU 0     /* LRU_HASH, one LRU shared by all CPUs */
#define CT_LAYOUT_PERCPU_LRU 1     /* LRU_HASH with BPF_F_NO_COMMON_LRU */
#define CT_LAYOUT_PERCPU_MAPS 2    /* ARRAY_OF_MAPS of LRU_HASH, one per CPU */
#define CT_LAYOUT_PERCPU_SETS 3    /* ARRAY of 4-way sets, a partition per CPU */
#ifndef CT_LAYOUT
#define CT_LAYOUT CT_LAYOUT_PERCPU_SETS
#endif
#define CT_MAX_CPUS 1024 /* per-CPU LRU maps layout: outer map size */

#if CT_LAYOUT == CT_LAYOUT_PERCPU_SETS
#define CT_WAYS 4

/* struct ct_entry is one tracked flow; last_seen 0 marks an empty way. */
struct ct_entry {
	struct flow_key key;
	__u32 backend_id;
	__u32 vip_id;
	__u64 last_seen; /* bpf_jiffies64() of the last packet, | 1 */
	__u64 pad;
};

/* struct ct_set is one conntrack value: CT_WAYS flows with one set index. */
struct ct_set {
	struct ct_entry way[CT_WAYS];
};

/* The number of sets per CPU, set at load time with max_entries. */
volatile const __u32 ct_sets = CONNTRACK_DEFAULT_SIZE / CT_WAYS;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	/*
	 * Replaced at load time (bpf.Configure): possible CPUs * ct_sets.
	 * Unconfigured (tests loading the raw object) only CPU 0's partition
	 * exists; other CPUs find no set and do not track flows.
	 */
	__uint(max_entries, CONNTRACK_DEFAULT_SIZE / CT_WAYS);
	__type(key, __u32);
	__type(value, struct ct_set);
} conntrack SEC(".maps");
#elif CT_LAYOUT == CT_LAYOUT_PERCPU_MAPS
struct ct_table {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CONNTRACK_DEFAULT_SIZE);
	__type(key, struct flow_key);
	__type(value, struct ct_value);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, CT_MAX_CPUS);
	__type(key, __u32);
	__array(values, struct ct_table);
} conntrack SEC(".maps");

/* clang emits only a forward declaration of a key type used by an inner map. */
const struct flow_key ct_key_anchor __attribute__((used));
const struct ct_value ct_value_anchor __attribute__((used));

static __always_inline void *ct_map(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&conntrack, &cpu);
}
#else
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CONNTRACK_DEFAULT_SIZE);
#if CT_LAYOUT == CT_LAYOUT_PERCPU_LRU
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
#endif
	__type(key, struct flow_key);
	__type(value, struct ct_value);
} conntrack SEC(".maps");

static __always_inline void *ct_map(void)
{
	return &conntrack;
}
#endif

/* The Maglev table size, set at load time together with the inner map size. */
volatile const __u32 maglev_size = MAGLEV_DEFAULT_SIZE;

static __always_inline void count_stat(__u32 stat)
{
	__u64 *c = bpf_map_lookup_elem(&lb_stats, &stat);

	if (c)
		*c += 1;
}

static __always_inline int drop_packet(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&drop_stats, &reason);

	if (c)
		*c += 1;
	return XDP_DROP;
}

static __always_inline void count_traffic(void *map, __u32 idx, __u32 bytes)
{
	struct counter *c = bpf_map_lookup_elem(map, &idx);

	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

#endif /* AIRD_LB_MAPS_H */
