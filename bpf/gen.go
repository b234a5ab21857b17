package bpf

// Regenerate with `go generate ./bpf/` (needs clang-14 and llvm-strip-14);
// check-generated.sh verifies the committed output is current and
// reproducible.
//
// -nostdinc keeps the build independent of the host's /usr/include: every
// header comes from ./include (see include/README.md).
//
// Go types: -type family_counter generates DatapathFamilyCounter. enum family
// becomes DatapathFamily automatically, because the family_max anchor in
// xdp.c is a global of that type (passing -type family as well makes bpf2go
// v0.22 fail with a duplicate type name).
//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -cflags "-O2 -g -Wall -Werror -nostdinc -I./include" -target bpfel -type family_counter Datapath xdp.c
