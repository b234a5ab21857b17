// Package bench holds aird's benchmarks: the XDP pipeline per packet
// (BenchmarkPacket and the single-shot sets), measured with
// BPF_PROG_TEST_RUN in multiples of floor programs run the same way in the
// same process (floor.c: MAC swap, and a minimal IPv6-in-IPv6
// encapsulation; restore_xdp undoes encapsulation between the repetitions
// of a steady-state run), and the real daemon at scale
// (BenchmarkDaemonScale). Every data plane is programmed through lb.Manager,
// as the daemon programs it. Run them with bench/xdp.sh and
// bench/daemon.sh; see docs/performance.md for the method and the recorded
// numbers. They need root (AIRD_TEST_PRIVILEGED=1 turns a missing privilege
// into a failure) and are never timed assertions.
package bench
