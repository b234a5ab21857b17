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
 * starts a new flow: it looks at its set only to rewrite a reused tuple's
 * entry, and only when ct_tags says the tuple may be there), else the
 * Maglev table of the vip_id at slot
 * hash % M (each table has its own size M, see lb_maps.h), and the choice
 * is recorded in conntrack from the flow's first packet that is not a SYN
 * (below, "Conntrack"). A conntrack
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
#include "pipeline.h"
#include "proto.h"

/* LB_MATCHED: lb_classify found the VIP flow; the stage goes on with it. */
#define LB_MATCHED (-2)

/*
 * struct lb_flow is what the lb stage knows about a packet to a VIP: the
 * service key and the flow key (both built from the packet, or from the
 * flow an ICMP error quotes), the service found, and how to treat it.
 */
struct lb_flow {
	struct vip_key vk __attribute__((aligned(8))); /* read as 64-bit words (vip_find) */
	struct flow_key fk;
	struct vip_value *vip; /* NULL, or vip_buf: the service found */
	struct vip_value vip_buf;
	__u32 relayed;  /* 0, or LB_STAT_PTB_RELAYED / LB_STAT_ICMP_RELAYED */
	int fragment;   /* hashed without ports, port-0 entry only */
	int track;      /* record the choice in conntrack (not for an ICMP error) */
	int syn;        /* a TCP SYN: the table decides, conntrack is not looked up */
	__u8 ttl;
};

/*
 * stage_lb does not zero its struct lb_flow (104 bytes, 13 stores on every
 * packet): lb_flow_start writes what lb_read_flow and lb_classify do not,
 * and they write the rest before reading it (docs/performance.md, "An
 * instruction-level review"). A new field needs a line there.
 */
_Static_assert(sizeof(struct lb_flow) == 104, "struct lb_flow changed: initialize its new field in lb_flow_start");

static __always_inline int has_ports(__u8 proto)
{
	return proto == IP_PROTO_TCP || proto == IP_PROTO_UDP || proto == IP_PROTO_SCTP;
}

/* vip_key_word is a vips key's port, proto and pad as its little-endian 32-bit word. */
static __always_inline __u32 vip_key_word(__be16 port, __u8 proto)
{
	return (__u32)port | (__u32)proto << 16;
}

/*
 * vip_find copies vk's vips value into *out and returns out, or NULL when
 * vk is no vips key; c is vk's port, proto and pad as one little-endian
 * word (vip_key_word), passed in a register: read back from the stack
 * right after the narrower stores that wrote it, the CPU could not
 * forward them and would wait for them. It reads vk's set of vip_sets
 * (lb_maps.h), and vips itself only when the set is being rewritten, or
 * when it misses in a set that has overflowed. A value is copied out
 * before the set's seq is checked again: a pointer into the set could
 * change under the caller. (x86 keeps loads, and the control plane's
 * stores, in order, and the barriers keep clang from moving them; a weakly
 * ordered CPU would need barriers clang-14 cannot emit for BPF.)
 */
static __always_inline struct vip_value *vip_find(const struct vip_key *vk, __u32 c, struct vip_value *out)
{
	/* vk is 8-byte aligned: the first member of struct lb_flow. */
	__u64 a = *(const __u64 *)&vk->addr[0], b = *(const __u64 *)&vk->addr[8];
	__u32 used = (c & 0x00ffffff) | (VIP_WAY_USED << 24);
	__u32 idx = vip_set_index(a, b, c) & vip_set_mask;
	struct vip_value *vp, v = {};
	struct vip_set *s;
	__u32 seq, overflow, found = 0;
	int w;

	s = bpf_map_lookup_elem(&vip_sets_v2, &idx);
	if (!s)
		goto slow;
	seq = *(volatile __u32 *)&s->seq;
	barrier();
#pragma unroll
	for (w = 0; w < VIP_WAYS; w++) {
		const struct vip_way *x = &s->way[w];

		if (((*(const __u64 *)&x->key.addr[0] ^ a) | (*(const __u64 *)&x->key.addr[8] ^ b) |
		     (*(const __u32 *)&x->key.port ^ used)) == 0) {
			v = x->value;
			found = 1;
			break;
		}
	}
	overflow = s->overflow;
	barrier();
	if ((seq & 1) || *(volatile __u32 *)&s->seq != seq)
		goto slow;
	if (found) {
		*out = v;
		return out;
	}
	if (!overflow)
		return 0;
slow:
	vp = bpf_map_lookup_elem(&vips, vk);
	if (!vp)
		return 0;
	*out = *vp;
	return out;
}

/*
 * lookup_service finds the service for vk (addr and proto set) and port,
 * copies its value into *buf and returns buf, or NULL. fragment: the
 * packet carries no reliable port.
 */
static __always_inline struct vip_value *lookup_service(struct vip_key *vk, __be16 port, int fragment,
							 struct vip_value *buf)
{
	struct vip_value *vip;

	if (!fragment && port) {
		vk->port = port;
		vip = vip_find(vk, vip_key_word(port, vk->proto), buf);
		if (vip)
			return vip;
	}
	vk->port = 0;
	vip = vip_find(vk, vip_key_word(0, vk->proto), buf);
	if (vip && !fragment && (vip->flags & VIP_F_FRAGMENTS_ONLY))
		return 0;
	return vip;
}

/* lookup_addr_entry copies vk's address entry into *buf and returns buf, or NULL: not a VIP. */
static __always_inline struct vip_value *lookup_addr_entry(struct vip_key *vk, struct vip_value *buf)
{
	vk->port = 0;
	vk->proto = 0;
	return vip_find(vk, 0, buf);
}

/* not_for_service drops reason when the address is a VIP, else continues. */
static __always_inline int not_for_service(struct vip_key *vk, __u32 reason)
{
	struct vip_value buf;

	if (lookup_addr_entry(vk, &buf))
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

/*
 * Conntrack. A flow's backend is recorded when its first packet that is
 * not a TCP SYN arrives (CT_POLICY_FIRST_ACK): a client's handshake ACK,
 * a UDP flow's first datagram. The entry is new (CT_F_NEW) until the
 * flow's next packet, which makes it established. A new flow may take an
 * empty way, replace another new entry, or replace an established entry
 * idle for settings.ct_idle; it never replaces an active established one
 * (LB_STAT_CT_FULL: balanced by the table, not tracked). So spoofed
 * packets - one per invented flow - only ever replace each other, and a
 * SYN flood writes nothing at all. A SYN takes the table (a reused tuple
 * starts a new connection): it rewrites its flow's entry, if there is one,
 * and creates none. Between a SYN and its ACK the choice is consistent as
 * long as the Maglev table does not change (docs/performance.md,
 * "Conntrack under floods").
 *
 * Partitions are per CPU. Where a flow's packets come from several CPUs
 * (veth: XDP runs on the sender's), a SYN empties its tuple's entries on
 * the other CPUs (ct_forget_elsewhere) and a miss looks there before the
 * table (ct_lookup_elsewhere). Packets from an uplink whose flows stay on
 * one CPU (UPLINK_F_FLOW_AFFINE: a NIC with RSS) skip both steps
 * (ct_cross_cpu): there a flow never meets another partition. The flag is
 * read on the SYN and miss paths only, never for a conntrack hit.
 *
 * ct_flood_count counts new-flow packets per CPU and flood window; beyond
 * settings.flood_rate they are counted as LB_STAT_CT_FLOOD and skip both
 * cross-CPU steps; it returns whether this packet is beyond.
 */
static __always_inline int ct_flood_count(const struct pipeline_settings *st, __u64 now,
					  struct pipeline_counters *stats)
{
	struct ct_flood_window *w;
	__u32 zero = 0, window;

	if (!st->flood_rate)
		return 0;
	w = bpf_map_lookup_elem(&ct_flood, &zero);
	if (!w)
		return 0;
	window = st->flood_window ? st->flood_window : FLOOD_WINDOW_DEFAULT;
	if (now - w->start >= window) {
		w->start = now;
		w->count = 0;
	}
	if (++w->count <= st->flood_rate)
		return 0;
	count_stat_in(stats, LB_STAT_CT_FLOOD);
	return 1;
}

#if CT_LAYOUT == CT_LAYOUT_PERCPU_SETS
static __always_inline int flow_equal(const struct flow_key *a, const struct flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

/*
 * ct_cross_cpu reports whether a new-flow packet (a SYN, a miss) takes the
 * cross-CPU steps: more than one partition, not beyond the flood
 * threshold, and received on a link whose flows may come from any CPU
 * (not when settings say every uplink keeps its flows on one CPU).
 */
static __always_inline int ct_cross_cpu(struct xdp_md *ctx, const struct pipeline_settings *st, int flood)
{
	if (flood || ct_cpus < 2 || (st->flags & SETTINGS_F_UPLINKS_AFFINE))
		return 0;
	return !uplink_flow_affine(ctx->ingress_ifindex);
}

/* ct_set_index returns the set of a conntrack hash (flow_ct_hash) within a CPU's partition. */
static __always_inline __u32 ct_set_index(__u64 hash)
{
	if (ct_set_mask)
		return (__u32)(hash >> 32) & ct_set_mask;
	return (__u32)(hash >> 32) % ct_sets;
}

/* ct_set_at returns the conntrack set at index idx (a CPU's partition, a set in it), or NULL. */
static __always_inline struct ct_set *ct_set_at(__u32 idx)
{
	return bpf_map_lookup_elem(&conntrack_v2, &idx);
}

/* Tag bytes of ct_tags (lb_maps.h); a flow's tag is at least CT_TAG_FIRST. */
#define CT_TAG_UNKNOWN 0
#define CT_TAG_EMPTY 1
#define CT_TAG_FIRST 2

/* ct_tag returns fk's tag byte: the top byte of its words' xor times a 64-bit odd constant. */
static __always_inline __u32 ct_tag(const struct flow_key *fk)
{
	const __u64 *x = (const __u64 *)fk;
	__u32 t = ((x[0] ^ x[1] ^ x[2] ^ x[3] ^ x[4]) * 0x9e3779b97f4a7c15ULL) >> 56;

	return t < CT_TAG_FIRST ? t + CT_TAG_FIRST : t;
}

/* ct_tags_word returns the ct_tags word of the set at index idx, or NULL. */
static __always_inline __u32 *ct_tags_word(__u32 idx)
{
	__u32 k = idx >> 1;
	struct ct_tag_pair *p = bpf_map_lookup_elem(&ct_tags_v2, &k);

	return p ? &p->set[idx & 1] : 0;
}

/* ct_tags_may_hold reports whether a set whose tags are word may hold a flow with tag t. */
static __always_inline int ct_tags_may_hold(__u32 word, __u32 t)
{
	__u32 x = word ^ (t * 0x01010101);

	/* A zero byte in word (CT_TAG_UNKNOWN) or in x (t): exact "has a zero byte" tests. */
	return ((((word - 0x01010101) & ~word) | ((x - 0x01010101) & ~x)) & 0x80808080) != 0;
}

/* ct_tags_of returns the tags word describing set s as it is. */
static __always_inline __u32 ct_tags_of(const struct ct_set *s)
{
	__u32 word = 0;
	int w;

#pragma unroll
	for (w = 0; w < CT_WAYS; w++)
		word |= (s->way[w].last_seen ? ct_tag(&s->way[w].key) : CT_TAG_EMPTY) << (8 * w);
	return word;
}

/* ct_entry_hash returns the flow hash bits ce keeps: those the outer header takes (enum ct_hash_bits). */
static __always_inline __u64 ct_entry_hash(const struct ct_entry *ce)
{
	return (__u64)ce->hash_hi << 32 | ce->flags >> CT_LABEL_SHIFT;
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

#if CT_POLICY == CT_POLICY_LRU
/* ct_victim returns the way to (re)write fk into: its own, else an empty
 * one, else the least recently seen. */
static __always_inline struct ct_entry *ct_victim(struct ct_set *s, const struct flow_key *fk, __u64 now, __u64 idle)
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
#else
/*
 * ct_victim returns the way to write a new flow fk into: its own, else an
 * empty one, else the least recently seen new one, else the least recently
 * seen established one idle for idle jiffies; NULL when every way holds an
 * active established flow.
 */
static __always_inline struct ct_entry *ct_victim(struct ct_set *s, const struct flow_key *fk, __u64 now, __u64 idle)
{
	struct ct_entry *young = 0, *stale = 0;
	__u64 young_age = 0, stale_age = 0;
	int w;

#pragma unroll
	for (w = 0; w < CT_WAYS; w++) {
		struct ct_entry *e = &s->way[w];
		__u64 age;

		if (!e->last_seen || flow_equal(&e->key, fk))
			return e;
		age = now - e->last_seen;
		if (e->flags & CT_F_NEW) {
			if (!young || age >= young_age) {
				young = e;
				young_age = age;
			}
		} else if (age >= idle && (!stale || age >= stale_age)) {
			stale = e;
			stale_age = age;
		}
	}
	return young ? young : stale;
}
#endif

/* struct ct_ref is this CPU's conntrack set for one conntrack hash. */
struct ct_ref {
	struct ct_set *set;
	__u32 idx;  /* the set's index in conntrack (and ct_tags) */
	__u64 now;
	__u64 idle; /* settings.ct_idle */
	struct pipeline_counters *stats; /* what the conntrack steps count into */
};

static __always_inline void ct_open(struct ct_ref *r, __u64 hash, const struct pipeline_settings *st,
				    struct pipeline_counters *stats)
{
	__u32 *word;

	r->stats = stats;
	r->idx = bpf_get_smp_processor_id() * ct_sets + ct_set_index(hash);
	r->set = ct_set_at(r->idx);
	/*
	 * Start loading the set's ct_tags word now, beside the set itself: a
	 * SYN reads it, a new entry writes it, and either way its line (a
	 * random one of a 1 MiB array) would otherwise be a second miss after
	 * the set's, also for a store (the stores behind it in the store
	 * buffer wait for it). Measured: a new flow's insert 20 % slower
	 * without this load (docs/performance.md, "Per packet").
	 */
	word = ct_tags_word(r->idx);
	if (word) {
		__u32 w = *(volatile __u32 *)word;

		barrier_var(w);
	}
	r->now = bpf_jiffies64() | 1;
	r->idle = st->ct_idle ? st->ct_idle : CT_IDLE_DEFAULT;
}

/*
 * ct_lookup returns the backend conntrack recorded for fk under vip_id,
 * or 0; on a hit *hash holds the flow hash's bits the outer header takes
 * (ct_entry_hash): a hit needs no flow hash. A hit refreshes the entry
 * and, with promote (a packet of the flow, not an ICMP error about it),
 * makes a new entry established.
 */
static __always_inline __u32 ct_lookup(const struct ct_ref *r, const struct flow_key *fk, __u32 vip_id, int promote,
				       __u64 *hash)
{
	struct ct_entry *ce;
	__u32 flags;

	if (!r->set)
		return 0;
	ce = ct_find(r->set, fk);
	if (!ce || ce->vip_id != vip_id)
		return 0;
	if (ce->last_seen != r->now)
		ce->last_seen = r->now;
	flags = ce->flags;
	if (promote && (flags & CT_F_NEW)) {
		ce->flags = flags & ~CT_F_NEW;
		count_stat_in(r->stats, LB_STAT_CT_PROMOTE);
	}
	*hash = (__u64)ce->hash_hi << 32 | flags >> CT_LABEL_SHIFT;
	return ce->backend_id;
}

/* ct_tags_update rewrites the ct_tags word of r's set from the set. */
static __always_inline void ct_tags_update(const struct ct_ref *r)
{
	__u32 *word = ct_tags_word(r->idx);

	if (word)
		*word = ct_tags_of(r->set);
}

/* CT_NEW_FLAGS are the flags of a new entry. */
#define CT_NEW_FLAGS (CT_POLICY == CT_POLICY_LRU ? 0 : CT_F_NEW)

/*
 * ct_write writes fk's choice into way ce of r's set with flags (enum
 * ct_flags) and the bits of fk's flow hash the entry keeps.
 */
static __always_inline void ct_write(const struct ct_ref *r, struct ct_entry *ce, const struct flow_key *fk, __u32 vip_id,
				     __u32 id, __u32 flags, __u64 hash)
{
	ce->key = *fk;
	ce->backend_id = id;
	ce->vip_id = vip_id;
	ce->last_seen = r->now;
	ce->flags = flags | (__u32)hash << CT_LABEL_SHIFT;
	ce->hash_hi = hash >> 32;
	ct_tags_update(r);
	count_stat_in(r->stats, LB_STAT_CT_INSERT);
}

/*
 * ct_record records backend id for a new flow fk (flow hash hash) under
 * vip_id, if a way may take it.
 */
static __always_inline void ct_record(const struct ct_ref *r, const struct flow_key *fk, __u32 vip_id, __u32 id,
				      __u64 hash)
{
	struct ct_entry *ce;

	if (!r->set)
		return;
	ce = ct_victim(r->set, fk, r->now, r->idle);
	if (!ce) {
		count_stat_in(r->stats, LB_STAT_CT_FULL);
		return;
	}
	if (ce->last_seen && !flow_equal(&ce->key, fk))
		count_stat_in(r->stats, LB_STAT_CT_EVICT);
	ct_write(r, ce, fk, vip_id, id, CT_NEW_FLAGS, hash);
}

/* struct ct_sweep is what ct_forget_cpu needs: the flow and its set index. */
struct ct_sweep {
	const struct flow_key *fk;
	__u32 set;  /* the flow's set within a partition */
	__u32 self; /* this CPU: its partition is not swept */
	struct pipeline_counters *stats;
};

/* ct_forget_cpu empties sw's flow's way in CPU cpu's partition (bpf_loop callback). */
static long ct_forget_cpu(__u32 cpu, void *ctx)
{
	struct ct_sweep *sw = ctx;
	struct ct_entry *ce;
	struct ct_set *s;
	__u32 idx;

	if (cpu == sw->self)
		return 0;
	idx = cpu * ct_sets + sw->set;
	s = ct_set_at(idx);
	if (!s)
		return 0;
	ce = ct_find(s, sw->fk);
	if (ce) {
		ce->last_seen = 0;
		count_stat_in(sw->stats, LB_STAT_CT_SWEPT);
	}
	return 0;
}

/*
 * ct_forget_elsewhere empties fk's entries in the other CPUs' partitions.
 * A SYN starts a new connection on a tuple that may have been used before;
 * on a NIC, RSS keeps every packet of the tuple on one CPU, whose entry
 * ct_syn rewrites. Where the sending CPU runs XDP (veth, or RSS changed),
 * the old connection may have left an entry on another CPU, and the new
 * connection's later packets that land there would follow it to the old
 * connection's backend - which resets them when the table changed since.
 * Emptying (not rewriting) a way another CPU owns: a race with that CPU
 * can only cost it a miss, never point a flow at a wrong backend. Only
 * when ct_cross_cpu: not beyond the flood threshold, so a SYN flood costs
 * no more than one set, and not on a flow-affine uplink.
 */
static __always_inline void ct_forget_elsewhere(const struct ct_ref *r, const struct flow_key *fk, __u64 ch)
{
	struct ct_sweep sw = {.fk = fk, .set = ct_set_index(ch), .self = bpf_get_smp_processor_id(),
			      .stats = r->stats};

	bpf_loop(ct_cpus, ct_forget_cpu, &sw, 0);
}

/* struct ct_borrow is what ct_find_cpu needs and finds. */
struct ct_borrow {
	const struct flow_key *fk;
	__u32 set;  /* the flow's set within a partition */
	__u32 self; /* this CPU: its partition was looked up already */
	__u32 vip_id;
	__u32 backend_id; /* found: the backend; 0: not found */
	__u32 flags;      /* found: the entry's flags */
};

/* ct_find_cpu looks for b's flow in CPU cpu's partition (bpf_loop callback; 1 stops). */
static long ct_find_cpu(__u32 cpu, void *ctx)
{
	struct ct_borrow *b = ctx;
	struct ct_entry *ce;
	struct ct_set *s;
	__u64 seen;
	__u32 idx, id, flags;

	if (cpu == b->self)
		return 0;
	idx = cpu * ct_sets + b->set;
	s = ct_set_at(idx);
	if (!s)
		return 0;
	ce = ct_find(s, b->fk);
	if (!ce)
		return 0;
	seen = ce->last_seen;
	id = ce->backend_id;
	flags = ce->flags;
	if (ce->vip_id != b->vip_id)
		return 0;
	/* The owning CPU may have replaced the way meanwhile: read it again. */
	if (ce->last_seen != seen || !flow_equal(&ce->key, b->fk))
		return 0;
	b->backend_id = id;
	b->flags = flags;
	return 1;
}

/*
 * ct_lookup_elsewhere returns the backend another CPU's partition holds for
 * fk (conntrack hash ch, flow hash hash) under vip_id, or 0, and copies the
 * entry (new or established, as it is there) into this CPU's partition. Where XDP runs on the sending CPU
 * (veth), a connection's packets come from several CPUs; without this a
 * packet on a CPU that had not seen the flow took the table (another
 * backend if the table changed since the flow began), and the entry it
 * left was a new one that a flood of spoofed packets replaces. Only for
 * packets that missed here and are not SYNs, when ct_cross_cpu.
 */
static __always_inline __u32 ct_lookup_elsewhere(const struct ct_ref *r, const struct flow_key *fk, __u32 vip_id,
						 __u64 ch, __u64 hash)
{
	struct ct_borrow b = {.fk = fk, .set = ct_set_index(ch), .self = bpf_get_smp_processor_id(),
			      .vip_id = vip_id};
	struct ct_entry *ce;

	if (!r->set)
		return 0;
	bpf_loop(ct_cpus, ct_find_cpu, &b, 0);
	if (!b.backend_id)
		return 0;
	count_stat_in(r->stats, LB_STAT_CT_HIT_ELSEWHERE);
	ce = ct_victim(r->set, fk, r->now, r->idle);
	if (!ce) {
		count_stat_in(r->stats, LB_STAT_CT_FULL);
		return b.backend_id;
	}
	if (ce->last_seen && !flow_equal(&ce->key, fk))
		count_stat_in(r->stats, LB_STAT_CT_EVICT);
	ct_write(r, ce, fk, vip_id, b.backend_id, b.flags & ((1U << CT_LABEL_SHIFT) - 1), hash);
	return b.backend_id;
}

/*
 * ct_syn records a SYN's choice: CT_POLICY_FIRST_ACK only over its flow's
 * own entry (a reused tuple), the other policies like any new flow. Every
 * policy empties the tuple's entries on other CPUs (ct_forget_elsewhere)
 * when cross (ct_cross_cpu). CT_POLICY_FIRST_ACK reads the set only when
 * its ct_tags word may hold the flow, and then brings the word up to date.
 */
static __always_inline void ct_syn(const struct ct_ref *r, const struct flow_key *fk, __u32 vip_id, __u32 id,
				   __u64 ch, __u64 hash, int cross)
{
	struct ct_entry *ce;
	__u32 *word;

	count_stat_in(r->stats, LB_STAT_CT_SYN);
	if (cross)
		ct_forget_elsewhere(r, fk, ch);
	if (CT_POLICY != CT_POLICY_FIRST_ACK) {
		ct_record(r, fk, vip_id, id, hash);
		return;
	}
	if (!r->set)
		return;
	word = ct_tags_word(r->idx);
	if (word && !ct_tags_may_hold(*word, ct_tag(fk)))
		return;
	ce = ct_find(r->set, fk);
	if (ce)
		ct_write(r, ce, fk, vip_id, id, CT_NEW_FLAGS, hash);
	else if (word)
		*word = ct_tags_of(r->set);
}
#else
struct ct_ref {
	void *map;
	__u64 now;
	__u32 seed;
	struct pipeline_counters *stats;
};

static __always_inline void ct_open(struct ct_ref *r, __u64 ch, const struct pipeline_settings *st,
				    struct pipeline_counters *stats)
{
	r->stats = stats;
	r->map = ct_map();
	r->now = bpf_jiffies64();
	r->seed = st->hash_seed;
}

/* ct_lookup: as in the sets layout; these values keep no hash, a hit computes it. */
static __always_inline __u32 ct_lookup(const struct ct_ref *r, const struct flow_key *fk, __u32 vip_id, int promote,
				       __u64 *hash)
{
	struct ct_value *cv;

	if (!r->map)
		return 0;
	cv = bpf_map_lookup_elem(r->map, fk);
	if (!cv || cv->vip_id != vip_id)
		return 0;
	*hash = flow_hash(fk, r->seed);
	return cv->backend_id;
}

static __always_inline void ct_record(const struct ct_ref *r, const struct flow_key *fk, __u32 vip_id, __u32 id,
				      __u64 hash)
{
	struct ct_value nv = {.backend_id = id, .vip_id = vip_id};

	if (!r->map)
		return;
	if (bpf_map_update_elem(r->map, fk, &nv, BPF_ANY))
		count_stat_in(r->stats, LB_STAT_CT_INSERT_FAILED);
	else
		count_stat_in(r->stats, LB_STAT_CT_INSERT);
}

/* ct_cross_cpu: these layouts look up one map for every CPU, or are bench alternatives. */
static __always_inline int ct_cross_cpu(struct xdp_md *ctx, const struct pipeline_settings *st, int flood)
{
	return 0;
}

static __always_inline __u32 ct_lookup_elsewhere(const struct ct_ref *r, const struct flow_key *fk, __u32 vip_id,
						 __u64 ch, __u64 hash)
{
	return 0;
}

/*
 * ct_syn: as in the sets layout, by CT_POLICY (no new entries protected
 * here, no sweep of other CPUs' entries: these layouts are bench/
 * alternatives).
 */
static __always_inline void ct_syn(const struct ct_ref *r, const struct flow_key *fk, __u32 vip_id, __u32 id,
				   __u64 ch, __u64 hash, int cross)
{
	struct ct_value *cv;

	count_stat_in(r->stats, LB_STAT_CT_SYN);
	if (CT_POLICY != CT_POLICY_FIRST_ACK) {
		ct_record(r, fk, vip_id, id, hash);
		return;
	}
	if (!r->map)
		return;
	cv = bpf_map_lookup_elem(r->map, fk);
	if (cv) {
		cv->backend_id = id;
		cv->vip_id = vip_id;
		count_stat_in(r->stats, LB_STAT_CT_INSERT);
	}
}
#endif

/* backend_get copies valid backend id into f; returns 0 or -1. */
static __always_inline int backend_get(__u32 id, struct fwd *f)
{
	struct backend *be = bpf_map_lookup_elem(&backends, &id);

	if (!be || !(be->flags & BACKEND_F_VALID))
		return -1;
	copy_addr(f->be.addr, be->addr);
	f->be.flags = be->flags;
	f->backend_id = id;
	return 0;
}

/* maglev_block returns block k of a Maglev table, or NULL. */
static __always_inline union maglev_block *maglev_block(void *table, __u32 k)
{
	return bpf_map_lookup_elem(table, &k);
}

/*
 * maglev_pick returns the backend id in vip_id's Maglev table for hash:
 * slot hash % M, its backend index, that index's id (layout in lb_maps.h).
 */
static __always_inline int maglev_pick(__u32 vip_id, __u64 hash, __u32 *id)
{
	union maglev_block *b;
	__u32 slot, slot_blocks, idx;
	void *table;

	table = bpf_map_lookup_elem(&maglev_v2, &vip_id);
	if (!table)
		return DROP_NO_BACKEND;
	b = maglev_block(table, 0);
	if (!b || !b->hdr.slots)
		return DROP_NO_BACKEND;
	slot = (__u32)hash % b->hdr.slots;
	slot_blocks = (b->hdr.slots + MAGLEV_SLOTS_PER_BLOCK - 1) / MAGLEV_SLOTS_PER_BLOCK;
	b = maglev_block(table, MAGLEV_HDR_BLOCKS + slot / MAGLEV_SLOTS_PER_BLOCK);
	if (!b)
		return DROP_NO_BACKEND;
	idx = b->slot[slot % MAGLEV_SLOTS_PER_BLOCK];
	if (!idx)
		return DROP_NO_BACKEND;
	idx--;
	b = maglev_block(table, MAGLEV_HDR_BLOCKS + slot_blocks + idx / MAGLEV_IDS_PER_BLOCK);
	if (!b)
		return DROP_NO_BACKEND;
	*id = b->id[idx % MAGLEV_IDS_PER_BLOCK];
	return 0;
}

/*
 * pick_backend chooses the backend for lf's flow and copies it to f->be,
 * and the flow hash's bits the outer header takes to f->hash: conntrack
 * first (not for a SYN), else the Maglev table, whose choice is recorded
 * when lf->track (a SYN's as ct_syn says). Returns 0, or a drop reason.
 * The conntrack set comes from the conntrack hash (flow_ct_hash, one
 * multiplication); the flow hash (seven dependent ones) is computed only
 * after a miss: a hit takes its bits from the entry. The cross-CPU steps
 * (ct_cross_cpu) are decided after a miss.
 */
static __always_inline int pick_backend(struct xdp_md *ctx, const struct lb_flow *lf, __u32 vip_id, struct fwd *f,
					const struct pipeline_settings *st, struct pipeline_counters *stats)
{
	__u64 ch = flow_ct_hash(&lf->fk);
	struct ct_ref ct;
	int err, cross = 0;
	__u32 id;

	ct_open(&ct, ch, st, stats);
	if (!lf->syn) {
		id = ct_lookup(&ct, &lf->fk, vip_id, lf->track, &f->hash);
		if (id && !backend_get(id, f)) {
			count_stat_in(stats, LB_STAT_CT_HIT);
			return 0;
		}
	}
	count_stat_in(stats, LB_STAT_CT_MISS);
	f->hash = flow_hash(&lf->fk, st->hash_seed);
	if (lf->track)
		cross = ct_cross_cpu(ctx, st, ct_flood_count(st, ct.now, stats));
	if (!lf->syn && cross) {
		id = ct_lookup_elsewhere(&ct, &lf->fk, vip_id, ch, f->hash);
		if (id && !backend_get(id, f))
			return 0;
	}
	err = maglev_pick(vip_id, f->hash, &id);
	if (err)
		return err;
	if (backend_get(id, f))
		return DROP_BAD_BACKEND;
	if (lf->syn)
		ct_syn(&ct, &lf->fk, vip_id, id, ch, f->hash, cross);
	else if (lf->track)
		ct_record(&ct, &lf->fk, vip_id, id, f->hash);
	return 0;
}

/*
 * icmp_quoted_flow fills lf's keys with the client flow an ICMP error (at
 * pkt->l4_off, addressed to lf->vk's address) quotes, and returns the
 * service it belongs to, or NULL when the quote is not a VIP flow.
 * lf->fragment is set when the quoted packet was a fragment (hashed
 * without ports).
 */
static __always_inline struct vip_value *icmp_quoted_flow(struct packet *pkt, struct lb_flow *lf)
{
	void *data = pkt->data;
	void *data_end = pkt->data_end;
	struct vip_key *vk = &lf->vk;
	struct flow_key *fk = &lf->fk;
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
			lf->fragment = 1;
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
			lf->fragment = 1;
		else if (has_ports(proto))
			ports = (void *)in + hlen;
		addr_v4mapped((__u32 *)fk->src, in->daddr);
		addr_v4mapped((__u32 *)fk->dst, in->saddr);
	}
	fk->proto = proto;
	vk->proto = proto;
	if (lf->fragment || !ports)
		return lookup_service(vk, 0, lf->fragment, &lf->vip_buf);
	if ((void *)(ports + 1) > data_end)
		return 0;
	fk->sport = ports->dest;
	fk->dport = ports->source;
	return lookup_service(vk, ports->source, 0, &lf->vip_buf);
}

static __always_inline int is_icmp_error(int v6, __u8 type)
{
	if (v6)
		return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG ||
		       type == ICMPV6_TIME_EXCEEDED || type == ICMPV6_PARAM_PROBLEM;
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAM_PROBLEM;
}

/*
 * lb_read_flow fills lf's keys and hop limit from an untagged IPv4/IPv6
 * packet; returns -1 for anything else (not the stage's business).
 */
static __always_inline int lb_read_flow(const struct packet *pkt, struct lb_flow *lf)
{
	void *data = pkt->data;
	void *data_end = pkt->data_end;

	if (pkt->vlan_depth)
		return -1;
	if (pkt->family == FAMILY_IPV6) {
		struct ipv6_hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		copy_addr(lf->vk.addr, ip6->daddr);
		copy_addr(lf->fk.src, ip6->saddr);
		lf->ttl = ip6->hop_limit;
	} else if (pkt->family == FAMILY_IPV4) {
		struct ipv4_hdr *ip = data + ETH_HLEN;

		if ((void *)(ip + 1) > data_end)
			return -1;
		addr_v4mapped((__u32 *)lf->vk.addr, ip->daddr);
		addr_v4mapped((__u32 *)lf->fk.src, ip->saddr);
		lf->ttl = ip->ttl;
	} else {
		return -1;
	}
	copy_addr(lf->fk.dst, lf->vk.addr);
	lf->vk.proto = pkt->l4_proto;
	flow_key_set_l4(&lf->fk, 0, 0, pkt->l4_proto);
	return 0;
}

/*
 * lb_echo answers an echo request to a VIP address (allow list checked,
 * whole: its ICMP header within its IP length); not a VIP: the next stage
 * looks.
 */
static __always_inline int lb_echo(struct xdp_md *ctx, struct packet *pkt, struct lb_flow *lf)
{
	struct vip_value *vip = lookup_addr_entry(&lf->vk, &lf->vip_buf);

	if (!vip)
		return STAGE_CONTINUE;
	if ((vip->flags & VIP_F_ALLOWLIST) && !source_allowed(vip->vip_id, lf->fk.src))
		return drop_packet(DROP_NOT_ALLOWED);
	if (pkt->flags & (PKT_F_IP_TRUNC | PKT_F_JUMBO))
		return drop_packet(DROP_MALFORMED);
	if (pkt->family == FAMILY_IPV6 && pkt->l4_off != ETH_HLEN + IPV6_HLEN)
		return drop_packet(DROP_EXT_HEADERS);
	/* The parser reads the ICMP header up to the frame's end: one that
	 * runs past the IP length (into padding) would be answered with a
	 * reply whose header lies outside it. */
	if ((__u32)pkt->l4_off + sizeof(struct icmp_hdr) > (__u32)pkt->l3_off + pkt->l3_len)
		return drop_packet(DROP_MALFORMED);
	/* An address entry's vip_id is VIP_ID_NONE: this counts nothing. */
	count_traffic(&vip_stats, vip->vip_id, pkt->len);
	return icmp_echo_reply(ctx, pkt);
}

/*
 * lb_icmp handles an (unfragmented) ICMP packet: echo requests to a VIP
 * are answered, errors quoting a VIP flow are matched to that flow
 * (LB_MATCHED, untracked), anything else is not the stage's business.
 */
static __always_inline int lb_icmp(struct xdp_md *ctx, struct packet *pkt, struct lb_flow *lf)
{
	int v6 = pkt->family == FAMILY_IPV6;
	__u32 off = pkt->l4_off;
	struct icmp_hdr *ic;

	barrier_var(off);
	if (off > MAX_L4_OFF)
		return not_for_service(&lf->vk, DROP_MALFORMED);
	ic = pkt->data + off;
	if ((void *)(ic + 1) > pkt->data_end)
		return not_for_service(&lf->vk, DROP_MALFORMED);
	if (ic->type == (v6 ? ICMPV6_ECHO_REQUEST : ICMP_ECHO_REQUEST))
		return lb_echo(ctx, pkt, lf);
	if (!is_icmp_error(v6, ic->type))
		return STAGE_CONTINUE;
	lf->vip = icmp_quoted_flow(pkt, lf);
	if (!lf->vip)
		return STAGE_CONTINUE;
	lf->relayed = ic->type == (v6 ? ICMPV6_PKT_TOOBIG : ICMP_DEST_UNREACH) && (v6 || ic->code == ICMP_FRAG_NEEDED)
			      ? LB_STAT_PTB_RELAYED
			      : LB_STAT_ICMP_RELAYED;
	lf->track = 0;
	if (lf->vip->flags & VIP_F_NO_PORTS) {
		lf->fk.sport = 0;
		lf->fk.dport = 0;
	}
	return LB_MATCHED;
}

/*
 * lb_idle reports whether no service is configured (SETTINGS_F_LB_IDLE):
 * then vips is empty, and a packet whose first probe missed is no VIP's
 * without the two probes after it (the VIP-wide entry, the address
 * entry). Read only after a miss, never on the path of a VIP's packet.
 */
static __always_inline int lb_idle(void)
{
	struct pipeline_settings *st = settings_get();

	return st && (st->flags & SETTINGS_F_LB_IDLE);
}

/*
 * lb_classify finds the service of pkt: LB_MATCHED with lf->vip set, a
 * verdict (answered or dropped here), or STAGE_CONTINUE (not a VIP).
 */
static __always_inline int lb_classify(struct xdp_md *ctx, struct packet *pkt, struct lb_flow *lf)
{
	__be16 port;

	lf->fragment = pkt->flags & PKT_F_FRAGMENT;
	if (pkt->flags & PKT_F_NO_L4 && !lf->fragment)
		return not_for_service(&lf->vk, (pkt->flags & PKT_F_EXT_LIMIT) ? DROP_EXT_HEADERS : DROP_MALFORMED);
	if (pkt->flags & PKT_F_L4_TRUNC)
		return not_for_service(&lf->vk, DROP_MALFORMED);
	if (!lf->fragment && pkt->l4_proto == (pkt->family == FAMILY_IPV6 ? IP_PROTO_ICMPV6 : IP_PROTO_ICMP))
		return lb_icmp(ctx, pkt, lf);

	port = (pkt->flags & PKT_F_PORTS) ? pkt->dport : 0;
	lf->vip = 0;
	if (!lf->fragment && port) {
		/* lookup_service's first probe; a miss with no service configured is no VIP's. */
		lf->vk.port = port;
		lf->vip = vip_find(&lf->vk, vip_key_word(port, lf->vk.proto), &lf->vip_buf);
		if (!lf->vip && lb_idle())
			return STAGE_CONTINUE;
	}
	if (!lf->vip)
		lf->vip = lookup_service(&lf->vk, 0, lf->fragment, &lf->vip_buf);
	if (!lf->vip)
		return not_for_service(&lf->vk, lf->fragment ? DROP_FRAGMENT : DROP_NO_SERVICE);
	if (!lf->fragment && (pkt->flags & PKT_F_PORTS) && !(lf->vip->flags & VIP_F_NO_PORTS))
		flow_key_set_l4(&lf->fk, pkt->sport, pkt->dport, pkt->l4_proto);
	/* A SYN starts a new flow: the table decides (ct_syn). */
	if ((pkt->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN && pkt->l4_proto == IP_PROTO_TCP)
		lf->syn = 1;
	return LB_MATCHED;
}

/*
 * lb_balance sends a matched VIP packet to its backend: allow list,
 * sanity, hop limit, backend choice, counters, encapsulation.
 */
static __always_inline int lb_balance(struct xdp_md *ctx, struct packet *pkt, struct lb_flow *lf)
{
	__u32 vip_id = lf->vip->vip_id;
	struct pipeline_settings *st;
	struct pipeline_counters *c;
	struct fwd f = {};
	int err;

	if ((lf->vip->flags & VIP_F_ALLOWLIST) && !source_allowed(vip_id, lf->fk.src))
		return drop_packet(DROP_NOT_ALLOWED);
	if (pkt->flags & (PKT_F_IP_TRUNC | PKT_F_JUMBO))
		return drop_packet(DROP_MALFORMED);
	if (lf->ttl <= 1) {
		count_stat(LB_STAT_TTL_PASS);
		return XDP_PASS;
	}
	st = settings_get();
	if (!st)
		return drop_packet(DROP_NO_SOURCE);
	/* The packet's counters from here on: one lookup (pipeline.h). */
	c = counters_get();
	if (!c)
		return XDP_ABORTED; /* element 0 of a per-CPU array: never */
	err = pick_backend(ctx, lf, vip_id, &f, st, c);
	if (err)
		return drop_packet_in(c, err);
	count_traffic(&vip_stats, vip_id, pkt->len);
	/* The backend's counters share its next hop's per-CPU entry (backend_cpu). */
	f.cpu = bpf_map_lookup_elem(&backend_cpu, &f.backend_id);
	if (f.cpu) {
		f.cpu->traffic.packets++;
		f.cpu->traffic.bytes += pkt->len;
	}
	if (lf->relayed)
		count_stat_in(c, lf->relayed);
	f.may_ptb = !lf->relayed;
	return lb_forward(ctx, pkt, &f, st, c);
}

/*
 * lb_flow_start initializes what of lf the stage reads before it writes
 * it: the service key's port and pad (a vips key, hashed whole), the
 * service found, relayed, track and syn. lb_read_flow writes the keys'
 * addresses and protocol, the flow key's ports word and the hop limit;
 * lb_classify fragment, and vip_buf before lf->vip points to it.
 */
static __always_inline void lb_flow_start(struct lb_flow *lf)
{
	lf->vk.port = 0;
	lf->vk.pad = 0;
	lf->vip = 0;
	lf->relayed = 0;
	lf->track = 1;
	lf->syn = 0;
}

static __always_inline int stage_lb(struct xdp_md *ctx, struct packet *pkt)
{
	struct lb_flow lf;
	int verdict;

	lb_flow_start(&lf);

	if (lb_read_flow(pkt, &lf))
		return STAGE_CONTINUE;
	verdict = lb_classify(ctx, pkt, &lf);
	if (verdict != LB_MATCHED)
		return verdict;
	return lb_balance(ctx, pkt, &lf);
}

#endif /* AIRD_LB_H */
