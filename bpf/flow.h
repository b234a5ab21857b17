/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * flow.h - the flow key and the flow hash.
 *
 * The flow hash picks the Maglev slot (hash % table size), the bits of the
 * outer source address and the outer IPv6 flow label. It must be identical
 * on every LB node (same seed) so that a flow keeps its backend when ECMP
 * moves it to another node; Go mirrors it in bpf.FlowHash (tested against
 * this implementation).
 *
 * The conntrack hash (flow_ct_hash) only picks a flow's conntrack set
 * within one node: it needs no agreement between nodes, only a good spread,
 * and is short enough not to delay the set's load on an established flow
 * (docs/performance.md, "Per packet").
 *
 * The hash works on the 40-byte key as five little-endian 64-bit words:
 * each word is xored in, multiplied by an odd constant and folded (xorshift);
 * the splitmix64 finalizer mixes the result. Every step is a bijection of the
 * state, so keys differing in one word never collide, and the finalizer
 * spreads every input bit over the whole output.
 */
#ifndef AIRD_FLOW_H
#define AIRD_FLOW_H

#include "common.h"

/*
 * struct flow_key is a flow: addresses as 16 bytes (IPv4-mapped for IPv4),
 * ports in network order (0 for flows hashed without ports), IP protocol.
 * It is also the conntrack key.
 */
struct flow_key {
	__u8 src[16];
	__u8 dst[16];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
} __attribute__((aligned(8)));

_Static_assert(sizeof(struct flow_key) == 40, "flow_key layout");

/*
 * flow_key_set_l4 writes a flow key's ports, protocol and pad as one
 * 64-bit word (little-endian layout, as every word of the key is read by
 * flow_hash and the conntrack compares): a wide load right after narrow
 * stores to the same word makes the CPU wait for the stores.
 */
static __always_inline void flow_key_set_l4(struct flow_key *k, __be16 sport, __be16 dport, __u8 proto)
{
	*(__u64 *)&k->sport = (__u64)sport | (__u64)dport << 16 | (__u64)proto << 32;
}

#define FLOW_HASH_INIT 0x6a09e667f3bcc909ULL
#define FLOW_HASH_MUL 0x9e3779b97f4a7c15ULL
#define FLOW_HASH_FIN1 0xbf58476d1ce4e5b9ULL
#define FLOW_HASH_FIN2 0x94d049bb133111ebULL

static __always_inline __u64 flow_hash_round(__u64 h, __u64 w)
{
	h ^= w;
	h *= FLOW_HASH_MUL;
	h ^= h >> 29;
	return h;
}

static __always_inline __u64 flow_hash(const struct flow_key *k, __u32 seed)
{
	const __u64 *w = (const __u64 *)k;
	__u64 h = FLOW_HASH_INIT ^ seed;

	h = flow_hash_round(h, w[0]);
	h = flow_hash_round(h, w[1]);
	h = flow_hash_round(h, w[2]);
	h = flow_hash_round(h, w[3]);
	h = flow_hash_round(h, w[4]);
	h ^= h >> 30;
	h *= FLOW_HASH_FIN1;
	h ^= h >> 27;
	h *= FLOW_HASH_FIN2;
	h ^= h >> 31;
	return h;
}

/*
 * flow_ct_hash is the conntrack hash of a flow key (bpf.ConntrackHash in
 * Go): the xor of its five words, the high half folded onto the low one,
 * times an odd constant. The set is taken from bits 32 and up of the
 * product (lb.h, ct_set_index), each of which depends on every bit of the
 * folded word, so every key bit reaches the set: the last bytes of a
 * client address (the top byte of its second word) as well as the ports.
 * It is one multiplication and a few independent xors where flow_hash is
 * seven dependent multiplications, and it takes no seed (keys with equal
 * words' xor collide whatever the seed, so one would protect nothing).
 * Its only user is the set index: changing it moves every entry, so the
 * map's name carries its version (conntrack_v2, lb_maps.h).
 */
static __always_inline __u64 flow_ct_hash(const struct flow_key *k)
{
	const __u64 *w = (const __u64 *)k;
	__u64 x = (w[0] ^ w[1]) ^ (w[2] ^ w[3]) ^ w[4];

	x ^= x >> 32;
	return x * FLOW_HASH_FIN1;
}

#endif /* AIRD_FLOW_H */
