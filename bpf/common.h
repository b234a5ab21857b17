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

#endif /* AIRD_COMMON_H */
