/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * lb_maps.h - the maps and map value layouts of the lb stage (and of the
 * probe stage, which tunnels like it). They have one writer, the load
 * balancer's control plane (lb/ through bpf.LB); the pipeline-wide maps
 * are in pipeline.h. Pinning, adoption and layout rules are those of
 * pipeline.h.
 */
#ifndef AIRD_LB_MAPS_H
#define AIRD_LB_MAPS_H

#include "common.h"
#include "flow.h"
#include "pipeline.h"

/*
 * Id spaces. The sizes below are the raw object's; bpf.Configure resizes
 * every map indexed by an id at load time (lb.max-vips, lb.max-backends):
 *   vip ids      0 .. max_vips-1: maglev, maglev_meta, vip_stats
 *   backend ids  1 .. max_backends: backends and backend_cpu hold
 *                max_backends + 1 entries; 0 is "none"
 *   vips         3 * max_vips entries: each service may come with its
 *                VIP's address entry and a fragments-only entry, which
 *                take no id of their own
 */
#define VIP_MAX 65536
#define BACKEND_MAX 65537
#define VIP_ENTRIES (3 * VIP_MAX)
#define CONNTRACK_DEFAULT_SIZE 65536
#define ALLOW_MAX 65536

/* VIP_ID_NONE is the vip_id of an address entry: it indexes nothing. */
#define VIP_ID_NONE 0xffffffff

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

/*
 * vips value. A service has a vip_id of its own; its fragments-only entry
 * carries the same vip_id (the same table, allow list and counters), an
 * address entry VIP_ID_NONE.
 */
struct vip_value {
	__u32 vip_id; /* indexes maglev, vip_stats and allow; < max_vips */
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

/* 25 jiffies: 25 ms (HZ=1000) to 250 ms (HZ=100). */
#define NEXTHOP_TTL_DEFAULT 25

/*
 * struct nexthop caches, per CPU and backend, what bpf_fib_lookup said
 * about the backend's address: a full FIB and neighbour lookup costs more
 * than the rest of the lb stage together. Only successful lookups are
 * cached, for settings.nexthop_ttl jiffies (bpf_jiffies64 is inlined by
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

/*
 * struct backend_cpu_state is one CPU's state of one backend (backend_cpu, a
 * per-CPU array indexed by backend id): its cached next hop and the
 * traffic the load balancer sent it. Every forwarded packet reads the
 * next hop, so its backend's counters come with the same lookup (they were
 * a map of their own, backend_stats: a second per-CPU lookup per packet).
 * The control plane writes an entry only whole and only when the backend
 * id changes hands (taken for an address, or released): clearing the next
 * hop then also starts the counters again, as an id handed out again must.
 */
struct backend_cpu_state {
	struct nexthop hop;
	struct counter traffic; /* packets and bytes sent to the backend */
};

_Static_assert(sizeof(struct backend_cpu_state) == 48, "backend_cpu layout");

/*
 * A Maglev table is one inner map of maglev_v2: an ARRAY of 8-byte blocks,
 * built by the control plane for one weighted set of backends and shared
 * by every VIP with that set. Each table has its own size
 * (BPF_F_INNER_MAP): a prime number of slots M, chosen from the VIP's
 * backend count. Backends are named by their index in the table's own
 * list, so a slot takes 16 bits whatever the backend ids are:
 *
 *   block 0                   header: M and the number of backends n
 *   blocks 1 .. S             slot s: index (1..n, 0: no backend) in lane
 *                             s % 4 of block 1 + s / 4; S = (M + 3) / 4
 *   blocks S+1 .. S+(n+1)/2   index i: backend id in lane (i-1) % 2 of
 *                             block S + 1 + (i-1) / 2
 *
 * Installing a new inner map in maglev_v2[vip_id] switches a VIP's table
 * atomically, header and all.
 */
enum maglev_layout {
	MAGLEV_HDR_BLOCKS = 1,
	MAGLEV_SLOTS_PER_BLOCK = 4,
	MAGLEV_IDS_PER_BLOCK = 2,
	MAGLEV_MAX_BACKENDS = 65535, /* indexes are 16 bits, 0 is "none" */
};

union maglev_block {
	struct {
		__u32 slots;    /* M, a prime */
		__u32 backends; /* n */
	} hdr;
	__u16 slot[MAGLEV_SLOTS_PER_BLOCK];
	__u32 id[MAGLEV_IDS_PER_BLOCK];
};

struct maglev_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	/* Every table has its own size; the control plane writes it through mmap. */
	__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, union maglev_block);
};

/*
 * struct table_meta is what the control plane installed in maglev_v2[vip_id]:
 * a restarted control plane learns the installed tables from it without
 * reading them back (that needs CAP_SYS_ADMIN). The data path never reads
 * it. An entry is valid only while maglev_v2[vip_id] holds the map table_id.
 */
struct table_meta {
	__u32 table_id;  /* the inner map's id */
	__u32 usable;    /* backends with slots in the table */
	__u8 config[16]; /* digest of the configured backends: size, addresses, ids, weights */
	__u8 table[16];  /* digest of the table's input: the same with health and drain applied */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIP_ENTRIES);
	__type(key, struct vip_key);
	__type(value, struct vip_value);
} vips SEC(".maps");

/*
 * vip_sets_v2: the vips entries again, in a set-associative table the data
 * path reads without a call. A kernel hash map lookup is a helper call and
 * a key compare call, each paying the return mitigations of the CPU; an
 * ARRAY lookup the verifier inlines. vips stays the complete truth and
 * vip_sets a copy of it that the lb stage reads first (lb.h, vip_find):
 *
 *   set       vip_set_index(key) & vip_set_mask (bpf.VIPSetIndex in Go)
 *   way       a vips entry: key (pad = VIP_WAY_USED) and value; a way
 *             whose key.pad is 0 is empty
 *   overflow  how many of the set's keys are in vips only (more keys than
 *             ways): a lookup that misses in the set looks them up there
 *   seq       even while the set is stable; the control plane makes it
 *             odd, rewrites the ways, makes it even again, each step a
 *             whole-value write of its own. A reader that sees it odd, or
 *             changed across its reads of the set, looks up vips instead.
 *
 * The control plane (bpf.LB, the one writer) puts an entry into vips
 * before vip_sets and takes it out of vip_sets before vips, so whatever a
 * reader falls back to holds every entry the set did. The table is
 * rebuilt from vips when a control plane starts (adopted or not).
 * VIP_SETS_DEFAULT sets of the raw object: bpf.Configure sizes the map and
 * vip_set_mask from the vips size, about one set per two entries.
 *
 * Where a key sits depends on vip_set_index: the hash is versioned in the
 * map's name, as maglev_v2's layout is. A new hash gets a new map, which
 * the control plane fills from the adopted vips before it attaches the
 * new program, while the program still attached reads the old map it
 * holds (pinned as vip_sets, version 1: a single multiplication, see
 * vip_set_index); an upgrade never rewrites a set under a reader of the
 * other hash.
 */
enum vip_set_layout {
	VIP_WAYS = 4,
	VIP_WAY_USED = 1, /* key.pad of a used way */
};
#define VIP_SETS_DEFAULT 131072 /* a power of two >= VIP_ENTRIES / 2 */

struct vip_way {
	struct vip_key key; /* key.pad: VIP_WAY_USED, or 0: empty */
	struct vip_value value;
	__u32 pad;
} __attribute__((aligned(8))); /* keys read as 64-bit words */

struct vip_set {
	__u32 seq;      /* odd: being rewritten (readers use vips) */
	__u32 overflow; /* keys of the set only in vips */
	struct vip_way way[VIP_WAYS];
};

_Static_assert(sizeof(struct vip_way) == 32, "vip_way layout");
_Static_assert(sizeof(struct vip_set) == 8 + VIP_WAYS * 32, "vip_set layout");

/* The number of sets minus one (a power of two minus one), set at load time. */
volatile const __u32 vip_set_mask = VIP_SETS_DEFAULT - 1;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIP_SETS_DEFAULT); /* replaced at load time: vip_set_mask + 1 */
	__type(key, __u32);
	__type(value, struct vip_set);
} vip_sets_v2 SEC(".maps");

/*
 * vip_set_index hashes a vips key for its set, given as its words: the
 * address as two little-endian 64-bit words a and b, and c, the 32-bit
 * word of port, proto and pad (the pad byte is not hashed). A product's
 * bit depends only on the factor's bits at or below it, so each word is
 * mixed in below what the previous multiplication spread upwards (x ^ x
 * >> 29), and the set comes from the last product's bits 40-63, which
 * depend on every input bit. (The hash before multiplied once, the
 * address folded into its high half: the last bytes of an address, where
 * VIPs numbered in one prefix differ, reached 9 of a 17-bit set index's
 * bits, and 1,000 VIPs of a /112 filled 24 sets with 128 keys each - all
 * but four per set looked up in vips, a helper call. TestVIPSetSpread.)
 */
static __always_inline __u32 vip_set_index(__u64 a, __u64 b, __u32 c)
{
	__u64 x = a * FLOW_HASH_FIN1;

	x = (x ^ (x >> 29) ^ b) * FLOW_HASH_FIN2;
	x = (x ^ (x >> 29) ^ (c & 0x00ffffff)) * FLOW_HASH_MUL;
	return (__u32)(x >> 40);
}

/*
 * maglev_v2: vip_id -> Maglev table. The kernel fixes the inner layout
 * (struct maglev_table) when the outer map is created, and without
 * CAP_SYS_ADMIN a restarted aird cannot look at a pinned outer map's inner
 * maps to compare: the layout is versioned in the map's name instead, so
 * that a new layout gets a new map and the pin of the old one is removed.
 * Change the suffix with the layout (TestMaglevLayoutVersioned).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, VIP_MAX);
	__type(key, __u32);
	__array(values, struct maglev_table);
} maglev_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VIP_MAX);
	__type(key, __u32);
	__type(value, struct table_meta);
} maglev_meta SEC(".maps");

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
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BACKEND_MAX);
	__type(key, __u32);
	__type(value, struct backend_cpu_state);
} backend_cpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIP_MAX);
	__type(key, __u32);
	__type(value, struct counter);
} vip_stats SEC(".maps");

/*
 * conntrack: flow -> backend. The layout was chosen by measurement (see
 * docs/performance.md): per-CPU partitions of 4-way sets in one ARRAY. A
 * lookup is one inlined array access and at most four key compares; an
 * insert is a few stores - no helper call, no lock, no allocation, where a
 * kernel hash map update costs several times the whole rest of the stage.
 * The set is chosen by the conntrack hash (flow.h, flow_ct_hash: one
 * multiplication, where the Maglev hash takes seven), the partition by the CPU: XDP runs
 * a flow on the CPU of its RSS queue, and a flow that moves (RSS or IRQ
 * affinity changed) is simply not found there and takes the Maglev table
 * again, like with Katran's per-CPU LRU maps. Within a set the least
 * recently seen flow is replaced. bench/ct-layouts.sh builds the measured
 * alternatives with -DCT_LAYOUT=n.
 *
 * Where an entry sits depends on the set hash, so the hash is versioned in
 * the map's name, as vip_sets_v2's is: conntrack_v2 (and its summary
 * ct_tags_v2) is placed by flow_ct_hash; the version before, conntrack and
 * ct_tags, by the Maglev hash. A control plane that finds the old pinned
 * conntrack (an upgrade) copies its entries into the new map, each into
 * its set by the new hash in the same CPU's partition, before the new
 * program is attached (internal/datapath, migrateConntrack); the new
 * ct_tags_v2 starts all CT_TAG_UNKNOWN, which is always true.
 */
#define CT_LAYOUT_COMMON_LRU 0     /* LRU_HASH, one LRU shared by all CPUs */
#define CT_LAYOUT_PERCPU_LRU 1     /* LRU_HASH with BPF_F_NO_COMMON_LRU */
#define CT_LAYOUT_PERCPU_MAPS 2    /* ARRAY_OF_MAPS of LRU_HASH, one per CPU */
#define CT_LAYOUT_PERCPU_SETS 3    /* ARRAY of 4-way sets, a partition per CPU */
#ifndef CT_LAYOUT
#define CT_LAYOUT CT_LAYOUT_PERCPU_SETS
#endif
#define CT_MAX_CPUS 1024 /* per-CPU LRU maps layout: outer map size */

/*
 * Conntrack policy (lb.h, "Conntrack"; docs/performance.md, "Conntrack
 * under floods"): which packets create entries and which entries a new
 * flow may replace. bench/ct-flood.sh builds the measured alternatives
 * with -DCT_POLICY=n.
 */
#define CT_POLICY_LRU 0      /* a SYN (or a miss) writes an entry over the set's least recently seen */
#define CT_POLICY_SYN_NEW 1  /* a SYN writes a new entry; new entries never replace established ones */
#define CT_POLICY_FIRST_ACK 2 /* no entry for a SYN: the first non-SYN packet writes a new entry;
			       * new entries never replace established ones */
#ifndef CT_POLICY
#define CT_POLICY CT_POLICY_FIRST_ACK
#endif

/* An established entry idle this long may make room for a new flow. */
#define CT_IDLE_DEFAULT (60 * 250) /* jiffies: 60 s at HZ=250; settings.ct_idle is exact */
#define FLOOD_WINDOW_DEFAULT 250   /* jiffies: 1 s at HZ=250; settings.flood_window is exact */

/* enum ct_flags are the flags of a conntrack entry (its flags' bits below CT_LABEL_SHIFT). */
enum ct_flags {
	CT_F_NEW = 1 << 0, /* seen once: any new flow may replace it; the flow's next packet
			    * makes it established (clears the flag) */
};

/*
 * enum ct_hash_bits: a conntrack entry keeps the bits of its flow's flow
 * hash (flow.h) that the outer header takes (encap.h): bits 0-19, the
 * IPv6 flow label, in flags above the flag bits, and bits 32-63, the
 * outer source's varying bits, in hash_hi. A conntrack hit so sends the
 * packet as every packet of the flow was sent, without the flow hash:
 * only a flow that misses computes it (for Maglev, and to record it).
 */
enum ct_hash_bits {
	CT_LABEL_SHIFT = 12, /* flags bits 0-11: enum ct_flags; 12-31: flow hash bits 0-19 */
	CT_LABEL_BITS = 20,
};

/*
 * struct ct_flood_window is a CPU's new-flow count in the current flood
 * window (ct_flood, a per-CPU array of one).
 */
struct ct_flood_window {
	__u64 start; /* bpf_jiffies64() when the window began */
	__u32 count; /* new flows in it */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ct_flood_window);
} ct_flood SEC(".maps");

#if CT_LAYOUT == CT_LAYOUT_PERCPU_SETS
#define CT_WAYS 4


/* struct ct_entry is one tracked flow; last_seen 0 marks an empty way. */
struct ct_entry {
	struct flow_key key;
	__u32 backend_id;
	__u32 vip_id;
	__u64 last_seen; /* bpf_jiffies64() of the last packet, | 1 */
	__u32 flags;     /* enum ct_flags (0: established), and the flow label << CT_LABEL_SHIFT */
	__u32 hash_hi;   /* the flow hash's bits 32-63 */
};

/* struct ct_set is one conntrack value: CT_WAYS flows with one set index. */
struct ct_set {
	struct ct_entry way[CT_WAYS];
};

/* The number of sets per CPU, set at load time with max_entries. */
volatile const __u32 ct_sets = CONNTRACK_DEFAULT_SIZE / CT_WAYS;
/*
 * ct_sets - 1 when ct_sets is a power of two, else 0; set at load time. A
 * flow's set is hash % ct_sets either way (ct_set_index), but a mask
 * costs one instruction where a division costs tens of cycles.
 */
volatile const __u32 ct_set_mask = CONNTRACK_DEFAULT_SIZE / CT_WAYS - 1;
/* The number of CPU partitions (possible CPUs), set at load time. */
volatile const __u32 ct_cpus = 1;

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
} conntrack_v2 SEC(".maps");

/*
 * ct_tags summarises conntrack for a TCP SYN, which must rewrite its
 * flow's entry if there is one but usually finds none: reading the set to
 * know that is a random line of a large array, a cache and TLB miss (about
 * 300 ns on the bench machine, docs/performance.md). Each conntrack set
 * has one 32-bit word here, a byte per way: CT_TAG_UNKNOWN (0: nothing
 * known, the state of a new map), CT_TAG_EMPTY (the way held no flow when
 * the word was written), else ct_tag(key) of the way's flow. Element k
 * holds sets 2k and 2k+1 (1 MiB for the default 1,048,576 flows). Every
 * write of a way's key updates its byte; ways emptied elsewhere (other
 * CPUs' sweeps, the control plane) leave a stale tag, which only costs a
 * read. So a word that holds neither the flow's tag nor CT_TAG_UNKNOWN
 * proves the flow is not in the set.
 */
struct ct_tag_pair {
	__u32 set[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	/* Replaced at load time (bpf.Configure): half conntrack's, rounded up. */
	__uint(max_entries, CONNTRACK_DEFAULT_SIZE / CT_WAYS / 2);
	__type(key, __u32);
	__type(value, struct ct_tag_pair);
} ct_tags_v2 SEC(".maps");
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
} conntrack_v2 SEC(".maps");

/* clang emits only a forward declaration of a key type used by an inner map. */
const struct flow_key ct_key_anchor __attribute__((used));
const struct ct_value ct_value_anchor __attribute__((used));

static __always_inline void *ct_map(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&conntrack_v2, &cpu);
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
} conntrack_v2 SEC(".maps");

static __always_inline void *ct_map(void)
{
	return &conntrack_v2;
}
#endif

/*
 * BTF anchors (never read): enum maglev_layout and enum vip_set_layout for bpf2go, and the value
 * type of the inner maps, of which clang emits only a forward declaration.
 */
const enum maglev_layout maglev_layout_anchor __attribute__((used)) = MAGLEV_MAX_BACKENDS;
const union maglev_block maglev_block_anchor __attribute__((used));
const enum vip_set_layout vip_set_layout_anchor __attribute__((used)) = VIP_WAYS;

#endif /* AIRD_LB_MAPS_H */
