/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * stats.h - the count stage: packets and bytes per family (family_stats,
 * pipeline.h).
 */
#ifndef AIRD_STATS_H
#define AIRD_STATS_H

#include "common.h"
#include "parse.h"
#include "pipeline.h"

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
