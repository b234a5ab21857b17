package bpf

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// SumCounters reads entries keys of a per-CPU packets/bytes map (vip_stats,
// indexed by vip_id) and returns each summed over CPUs. Every key must be
// below the map's max entries.
func SumCounters(m *ebpf.Map, keys []uint32) (map[uint32]DatapathCounter, error) {
	return sumPerCPU(m, keys, func(c *DatapathCounter) DatapathCounter { return *c })
}

// SumBackendTraffic reads entries keys of backend_cpu (indexed by backend
// id) and returns the traffic counters of each, summed over CPUs.
func SumBackendTraffic(m *ebpf.Map, keys []uint32) (map[uint32]DatapathCounter, error) {
	return sumPerCPU(m, keys, func(s *DatapathBackendCpuState) DatapathCounter { return s.Traffic })
}

// sumPerCPU reads entries keys of a per-CPU array of V and sums the
// counter get takes out of each CPU's value.
func sumPerCPU[V any](m *ebpf.Map, keys []uint32, get func(*V) DatapathCounter) (map[uint32]DatapathCounter, error) {
	if m.Type() != ebpf.PerCPUArray {
		return nil, fmt.Errorf("read counters: %s is not a per-CPU array", m)
	}
	out := make(map[uint32]DatapathCounter, len(keys))
	var perCPU []V
	for _, k := range keys {
		if _, done := out[k]; done {
			continue
		}
		if err := m.Lookup(k, &perCPU); err != nil {
			return nil, fmt.Errorf("read counter %d: %w", k, err)
		}
		var sum DatapathCounter
		for i := range perCPU {
			c := get(&perCPU[i])
			sum.Packets += c.Packets
			sum.Bytes += c.Bytes
		}
		out[k] = sum
	}
	return out, nil
}

// PipelineCountersPerCPU reads the one value of pipeline_stats: the
// pipeline's counters (families, events, drops) of every possible CPU.
func PipelineCountersPerCPU(m *ebpf.Map) ([]DatapathPipelineCounters, error) {
	if m.Type() != ebpf.PerCPUArray {
		return nil, fmt.Errorf("read pipeline counters: %s is not a per-CPU array", m)
	}
	var per []DatapathPipelineCounters
	if err := m.Lookup(uint32(0), &per); err != nil {
		return nil, fmt.Errorf("read pipeline counters: %w", err)
	}
	return per, nil
}

// SumPipelineCounters reads pipeline_stats and returns its counters
// summed over CPUs.
func SumPipelineCounters(m *ebpf.Map) (DatapathPipelineCounters, error) {
	per, err := PipelineCountersPerCPU(m)
	if err != nil {
		return DatapathPipelineCounters{}, err
	}
	var sum DatapathPipelineCounters
	for i := range per {
		sum.Add(&per[i])
	}
	return sum, nil
}

// Add adds every counter of o to c.
func (c *DatapathPipelineCounters) Add(o *DatapathPipelineCounters) {
	for i := range c.Family {
		c.Family[i].Packets += o.Family[i].Packets
		c.Family[i].Bytes += o.Family[i].Bytes
	}
	for i := range c.Events {
		c.Events[i] += o.Events[i]
	}
	for i := range c.Drops {
		c.Drops[i] += o.Drops[i]
	}
}
