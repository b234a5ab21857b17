package bench

// Regenerate with `go generate ./bench/` (clang-14, llvm-strip-14), like
// bpf/; bpf/check-generated.sh checks both.
//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -cflags "-O2 -g -Wall -Werror -nostdinc -I../bpf -I../bpf/include" -target bpfel -type restore_conf Floor floor.c
