/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * stats.h - the count stage: packets and bytes per family.
 */
#ifndef AIRD_STATS_H
#define AIRD_STATS_H

#include "common.h"
#include "parse.h"

/* struct family_counter is one family_stats value; shared with Go via bpf2go. */
struct family_counter {
	__u64 packets;
	__u64 bytes;
};

/*
 * family_stats is indexed by enum family. Per-CPU, so the stage needs no
 * atomics; userspace sums the CPUs. Pinned and adopted across restarts by
 * internal/datapath, so its key and value layout may only ever grow by
 * appending families.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FAMILY_MAX);
	__type(key, __u32);
	__type(value, struct family_counter);
} family_stats SEC(".maps");

static __always_inline void stage_count(const struct packet *pkt)
{
	__u32 key = pkt->family;
	struct family_counter *c;

	c = bpf_map_lookup_elem(&family_stats, &key);
	if (!c)
		return;
	c->packets++;
	c->bytes += pkt->len;
}

#endif /* AIRD_STATS_H */
