# aird — the two commands of the README, plus build helpers. Run as root.
.PHONY: all build demo test generate check-generated

all: build

build:
	go build -o bin/ ./cmd/aird ./cmd/airctl

# A working demo in network namespaces (installs what it needs).
demo:
	bash integration/demo/demo.sh

# Every test, privileged ones included (installs what it needs).
test:
	bash integration/test.sh

# Regenerate the BPF objects (needs clang-14, llvm-14, libbpf-dev).
generate:
	go generate ./bpf/...

check-generated:
	bash bpf/check-generated.sh
