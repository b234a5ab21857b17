package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// ResetVIPStats zeroes the packet and byte counters of vip id on every
// CPU: an id handed out again must not start with its last owner's counts.
func (l *LB) ResetVIPStats(id uint32) error {
	return resetCounter(l.m.VipStats, id, "vip")
}

// ResetBackendStats zeroes the counters of backend id on every CPU, and
// with them its next-hop cache (the same entry of backend_cpu): an id is
// reset only when it changes hands.
func (l *LB) ResetBackendStats(id uint32) error {
	if err := l.clearBackendCPU(id); err != nil {
		return fmt.Errorf("reset backend %d counters: %w", id, err)
	}
	return nil
}

func resetCounter(m *ebpf.Map, id uint32, what string) error {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("reset %s %d counters: %w", what, id, err)
	}
	if err := m.Put(id, make([]DatapathCounter, n)); err != nil {
		return fmt.Errorf("reset %s %d counters: %w", what, id, err)
	}
	return nil
}
