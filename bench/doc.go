// Package bench holds aird's data-plane benchmarks: the XDP pipeline
// (bpf.DatapathObjects) measured with BPF_PROG_TEST_RUN in multiples of a
// floor program (bpf/floor.c: MAC swap + XDP_TX) run the same way in the
// same process. Run them with bench/xdp.sh; see docs/performance.md for the
// method and the recorded numbers. They need root (AIRD_TEST_PRIVILEGED=1
// turns a missing privilege into a failure) and are never timed
// assertions.
package bench
