package bpf

// Regenerate with `go generate ./bpf/` (needs clang-14 and llvm-strip-14);
// check-generated.sh verifies the committed output is current and
// reproducible.
//
// -nostdinc keeps the build independent of the host's /usr/include: every
// header comes from ./include (see include/README.md).
//
// Go types: every -type struct becomes Datapath<CamelCase> (family_counter
// is DatapathFamilyCounter, vip_key DatapathVipKey, ...). Enums become Go
// types automatically because the anchors at the end of xdp.c are globals of
// those types (passing an enum to -type as well makes bpf2go v0.22 fail
// with a duplicate type name): enum family is DatapathFamily, enum
// drop_reason DatapathDropReason, and so on. The benchmarks' own programs
// (floors, restore harness) are in bench/, generated the same way.
//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -cflags "-O2 -g -Wall -Werror -nostdinc -I./include" -target bpfel -type family_counter -type pipeline_counters -type counter -type vip_key -type vip_value -type vip_set -type vip_way -type backend -type ct_set -type ct_entry -type ct_flood_window -type flow_key -type allow_key -type addr_key -type prefix_key -type pipeline_settings -type nexthop -type backend_cpu_state -type hc_config -type endpoint -type endpoint_addr_key -type endpoint_iface -type endpoint_counters -type table_meta -type route_cache_entry Datapath xdp.c
