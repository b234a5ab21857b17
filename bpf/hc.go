package bpf

// ProgramHC is the tcx egress program (aird_hc, hc.h) that tunnels the
// node's own health probes: attached to lo, it encapsulates every packet
// whose mark is ProbeMark(id) to backend id and redirects it to the
// backend's next hop. Other packets pass untouched.
const ProgramHC = DatapathProgAirdHc

// Probe marks (enum hc_mark): the magic in the upper 16 bits, the backend
// id in the lower 16.
const (
	// ProbeMarkMagic is the mark of a probe with its id bits cleared.
	ProbeMarkMagic = uint32(DatapathHcMarkHC_MARK_MAGIC) << uint32(DatapathHcMarkHC_MARK_SHIFT)
	// ProbeMarkMask selects the bits of a mark that carry the magic (for
	// a policy rule "fwmark ProbeMarkMagic/ProbeMarkMask").
	ProbeMarkMask = ^uint32(DatapathHcMarkHC_MARK_ID_MASK)
)

// ProbeMark returns the socket mark that makes the probe program tunnel a
// packet to backend id (1 <= id < MaxBackends).
func ProbeMark(id uint32) uint32 {
	return ProbeMarkMagic | id&uint32(DatapathHcMarkHC_MARK_ID_MASK)
}
