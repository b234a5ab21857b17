/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * csum.h - Internet checksum helpers (RFC 1071, RFC 1624).
 *
 * Partial sums are kept in a __u64 of raw (network order) words: the one's
 * complement sum is byte-order independent as long as every word added is
 * in the same (memory) order, so fields are added exactly as they sit in
 * the packet and the folded result is stored back as is.
 */
#ifndef AIRD_CSUM_H
#define AIRD_CSUM_H

#include "common.h"

/* csum_fold folds a partial sum to 16 bits and complements it. */
static __always_inline __sum16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__sum16)~sum;
}

/* csum_add32 adds n 32-bit words starting at p (stack memory) to sum. */
#define CSUM_ADD_WORDS(sum, p, n)                                  \
	do {                                                       \
		const __u32 *__w = (const __u32 *)(p);             \
		int __i;                                           \
		_Pragma("unroll") for (__i = 0; __i < (n); __i++)  \
			(sum) += __w[__i];                         \
	} while (0)

/*
 * csum_replace2 updates check for a 16-bit word of the covered data
 * changing from old to new (RFC 1624 equation 3). All in memory order.
 */
static __always_inline __sum16 csum_replace2(__sum16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check + (__u16)~old + (__u32)new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__sum16)~sum;
}

#endif /* AIRD_CSUM_H */
