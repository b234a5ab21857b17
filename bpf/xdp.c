//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp.c - aird's XDP entry point, one program per uplink NIC.
 *
 * The program is a pipeline: parse_packet() builds a struct packet once,
 * then each stage (a static __always_inline function in its own header)
 * looks at it in turn. A stage ends the pipeline by returning a verdict, or
 * returns STAGE_CONTINUE; the default verdict is XDP_PASS.
 *
 *   parse   (parse.h)  Ethernet, VLAN, IPv4/IPv6, extension headers, ports
 *   count   (stats.h)  packets/bytes per family
 *   decap   (decap.h)  tunnel packets to the node's addresses: strip, pass
 *   lb      (lb.h)     VIP packets: conntrack/Maglev, encapsulate, forward
 *   router  (router.h) packets to the node's endpoints: deliver to their link
 *
 * aird_xdp_ep runs on the host side of every endpoint's link (veth, tap),
 * on what the endpoint sends: parse -> endpoint (source check) -> route.
 *
 * pipeline.h holds what the stages share: the stage protocol, the
 * pipeline-wide maps (settings, node addresses, counters) and their
 * helpers. Each stage owns its maps in its own header (lb_maps.h).
 *
 * The same object holds aird_hc, a tcx egress program on lo that tunnels
 * the node's own health probes to their backends (hc.h). Being in one
 * object, both programs share every pinned map.
 *
 * The go:build ignore line above keeps the Go tool from treating this file as
 * a cgo source; bpf2go compiles it with clang.
 */
#include "common.h"
#include "parse.h"
#include "stats.h"
#include "decap.h"
#include "lb.h"
#include "router.h"
#include "hc.h"

SEC("xdp")
int aird_xdp(struct xdp_md *ctx)
{
	struct packet pkt;
	int verdict;

	parse_packet(ctx, &pkt);
	stage_count(&pkt);

	verdict = stage_decap(ctx, &pkt);
	if (verdict != STAGE_CONTINUE)
		return verdict;
	verdict = stage_lb(ctx, &pkt);
	if (verdict != STAGE_CONTINUE)
		return verdict;
	verdict = stage_router(ctx, &pkt);
	if (verdict != STAGE_CONTINUE)
		return verdict;

	return XDP_PASS;
}

SEC("xdp")
int aird_xdp_ep(struct xdp_md *ctx)
{
	struct packet pkt;

	parse_packet(ctx, &pkt);
	return stage_endpoint(ctx, &pkt);
}

SEC("tcx/egress")
int aird_hc(struct __sk_buff *skb)
{
	return stage_hc(skb);
}

/*
 * BTF anchors. clang only emits BTF for types that maps, programs and
 * globals use; the counters' arrays are indexed by plain integers, and
 * flags live in plain __u32 fields, so these read-only globals put the
 * enums into BTF for
 * bpf2go. They are never read.
 */
const enum family family_max __attribute__((used)) = FAMILY_MAX;
const enum lb_stat lb_stat_max __attribute__((used)) = LB_STAT_MAX;
const enum drop_reason drop_reason_max __attribute__((used)) = DROP_MAX;
const enum vip_flags vip_flags_all __attribute__((used)) =
	VIP_F_ALLOWLIST | VIP_F_NO_PORTS | VIP_F_FRAGMENTS_ONLY;
const enum backend_flags backend_flags_all __attribute__((used)) = BACKEND_F_VALID | BACKEND_F_IPV4;
const enum uplink_flags uplink_flags_all __attribute__((used)) = UPLINK_F_FLOW_AFFINE;
const enum node_addr_flags node_addr_flags_all __attribute__((used)) = NODE_ADDR_F_DECAP;
const enum settings_flags settings_flags_all __attribute__((used)) =
	SETTINGS_F_NO_PTB | SETTINGS_F_SRC6 | SETTINGS_F_SRC4 | SETTINGS_F_UPLINKS_AFFINE | SETTINGS_F_LB_IDLE;
const enum endpoint_flags endpoint_flags_all __attribute__((used)) = EP_F_DSR;
const enum endpoint_addr_flags endpoint_addr_flags_all __attribute__((used)) = EP_ADDR_F_OWN | EP_ADDR_F_VIP;
const enum router_stat router_stat_max __attribute__((used)) = ROUTER_STAT_MAX;
const enum hc_mark hc_mark_magic __attribute__((used)) = HC_MARK_MAGIC;
const enum ct_flags ct_flags_all __attribute__((used)) = CT_F_NEW;
const enum ct_hash_bits ct_hash_bits_anchor __attribute__((used)) = CT_LABEL_SHIFT;

char LICENSE[] SEC("license") = "Dual BSD/GPL";
