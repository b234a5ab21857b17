/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * common.h - the one header every aird BPF source includes first.
 *
 * It pulls in the vendored UAPI and libbpf headers (include/, compiled with
 * -nostdinc) in the right order and fixes up the macros they disagree on.
 */
#ifndef AIRD_COMMON_H
#define AIRD_COMMON_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/*
 * linux/stddef.h (via linux/types.h) defines __always_inline as a plain
 * __inline__, and bpf_helpers.h keeps an existing definition. Stages must
 * really be inlined into the single XDP program, so force it.
 */
#undef __always_inline
#define __always_inline inline __attribute__((always_inline))

/*
 * load64 and store64 access 8 bytes at p as one word where a header's or
 * a value's type promises only 4-byte alignment (or none): the compiler
 * would otherwise copy a 16-byte address in 32-bit halves that it shifts
 * together, or byte by byte. The verifier accepts unaligned packet
 * access on CPUs that do it efficiently (x86, arm64; aird's targets);
 * map values and aird's stack structs holding addresses are 8-byte
 * aligned.
 */
typedef __u64 __attribute__((may_alias)) u64_word;

static __always_inline __u64 load64(const void *p)
{
	return *(const u64_word *)p;
}

static __always_inline void store64(void *p, __u64 v)
{
	*(u64_word *)p = v;
}

/* copy_addr copies a 16-byte address as two 8-byte words. */
static __always_inline void copy_addr(void *dst, const void *src)
{
	__u64 a = load64(src), b = load64(src + 8);

	store64(dst, a);
	store64(dst + 8, b);
}

#endif /* AIRD_COMMON_H */
