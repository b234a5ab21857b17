# aird — the two commands of the README, plus build helpers. Run as root.
.PHONY: all build deb demo demo-down test generate check-generated

all: build

# The version and revision come from git (packaging/version.sh); `aird
# --version` and `airctl version` print them.
VERSION  := $(shell bash packaging/version.sh go)
REVISION := $(shell bash packaging/version.sh rev)
LDFLAGS  := -X github.com/aird-net/aird/internal/version.version=$(VERSION) \
            -X github.com/aird-net/aird/internal/version.revision=$(REVISION)

build:
	go build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/aird ./cmd/airctl

# The Debian package, dist/aird_VERSION_ARCH.deb (packaging/deb.sh; nfpm
# runs as a Go tool, nothing to install).
deb:
	bash packaging/deb.sh dist

# The rack in network namespaces: two ToRs (FRR, BIRD), two aird LB nodes,
# aird backend nodes with container endpoints, real traffic (installs what
# it needs). KEEP=1 leaves it running; demo-down removes it.
demo:
	KEEP=$(KEEP) bash integration/demo/demo.sh

demo-down:
	go build -o bin/ ./integration/lab/cmd/airdlab
	bin/airdlab down

# Every test, privileged ones included (installs what it needs).
test:
	bash integration/test.sh

# Regenerate the BPF objects (needs clang-14, llvm-14, libbpf-dev).
generate:
	go generate ./bpf/...

check-generated:
	bash bpf/check-generated.sh
