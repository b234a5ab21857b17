//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp.c - aird's XDP entry point, one program per uplink NIC.
 *
 * The program is a pipeline: parse_packet() builds a struct packet once,
 * then each stage (a static __always_inline function in its own header)
 * looks at it in turn. A stage may end the pipeline by returning a verdict;
 * the default verdict is XDP_PASS.
 *
 *   parse   (parse.h)  Ethernet, VLAN, IPv4/IPv6 fixed header
 *   count   (stats.h)  packets/bytes per family
 *   (later: decap, lb, router)
 *
 * The go:build ignore line above keeps the Go tool from treating this file as
 * a cgo source; bpf2go compiles it with clang.
 */
#include "common.h"
#include "parse.h"
#include "stats.h"

SEC("xdp")
int aird_xdp(struct xdp_md *ctx)
{
	struct packet pkt;

	parse_packet(ctx, &pkt);
	stage_count(&pkt);

	return XDP_PASS;
}

/*
 * BTF anchors. clang only emits BTF for types that maps, programs and
 * globals use; family_stats is keyed by a plain __u32 (the kernel requires
 * an int key for arrays), so this read-only global puts enum family into
 * BTF for bpf2go (-type family). It is never read.
 */
const enum family family_max __attribute__((used)) = FAMILY_MAX;

char LICENSE[] SEC("license") = "Dual BSD/GPL";
