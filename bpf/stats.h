/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * stats.h - the count stage: packets and bytes per family (struct
 * pipeline_counters, pipeline.h).
 */
#ifndef AIRD_STATS_H
#define AIRD_STATS_H

#include "common.h"
#include "parse.h"
#include "pipeline.h"

/* stage_count counts pkt's packet and bytes in its family's counters. */
static __always_inline void stage_count(const struct packet *pkt)
{
	struct pipeline_counters *c = counters_get();
	struct family_counter *f;

	if (!c)
		return;
	f = &c->family[pkt->family & (FAMILY_SLOTS - 1)];
	f->packets++;
	f->bytes += pkt->len;
}

#endif /* AIRD_STATS_H */
