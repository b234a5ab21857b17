package integration

import "testing"

// TestPairedRatios: the live benchmark's per-round comparison divides each
// aird node's ns/pkt by the base node's of the same round (not by the
// base's median), so a load that halves every node's cost between rounds
// leaves the ratio alone; nodes that are not aird and the base itself are
// left out.
func TestPairedRatios(t *testing.T) {
	ws := map[string][]window{
		"aird-1":   {{nsPerPkt: 600}, {nsPerPkt: 300}, {nsPerPkt: 610}},
		"aird-1b":  {{nsPerPkt: 630}, {nsPerPkt: 315}, {nsPerPkt: 610}},
		"aird-10k": {{nsPerPkt: 660}, {nsPerPkt: 330}, {nsPerPkt: 732}},
		"floor":    {{nsPerPkt: 100}, {nsPerPkt: 100}, {nsPerPkt: 100}},
	}
	chains := []*lbChain{{name: "floor"}, {name: "aird-1", lb: &node{}}, {name: "aird-1b", lb: &node{}}, {name: "aird-10k", lb: &node{}}}
	got := pairedRatios(chains, "aird-1", func(name string) []window { return ws[name] })
	want := "ns/pkt over aird-1's in the same round (median of rounds, range): aird-1b 1.050x (1.000-1.050), aird-10k 1.100x (1.100-1.200)"
	if got != want {
		t.Errorf("pairedRatios:\n got %s\nwant %s", got, want)
	}
	if got := pairedRatios(chains, "aird-1k", func(name string) []window { return ws[name] }); got != "" {
		t.Errorf("without the base node: %q, want nothing", got)
	}
}
