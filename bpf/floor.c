//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * floor.c - the benchmark floor: the least an XDP forwarder does.
 *
 * It swaps the Ethernet addresses and sends the frame back out (XDP_TX).
 * bench/ measures aird_xdp in multiples of this program, run the same way
 * in the same process, so the ratio does not depend on the machine or on
 * the fixed cost of BPF_PROG_TEST_RUN. It is not used by aird itself.
 */
#include "common.h"

SEC("xdp")
int floor_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 tmp[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
