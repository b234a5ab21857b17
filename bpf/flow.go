package bpf

import (
	"encoding/binary"
	"net/netip"
)

// Htons converts a port to the network-order representation the generated
// structs hold in their __be16 fields.
func Htons(v uint16) uint16 { return v<<8 | v>>8 }

// Ntohs is the inverse of Htons.
func Ntohs(v uint16) uint16 { return Htons(v) }

// Addr16 returns addr as the 16 bytes the maps use: IPv6 as is, IPv4
// IPv4-mapped.
func Addr16(addr netip.Addr) [16]byte { return addr.Unmap().As16() }

// Flow hash constants; they match flow.h.
const (
	flowHashInit = 0x6a09e667f3bcc909
	flowHashMul  = 0x9e3779b97f4a7c15
	flowHashFin1 = 0xbf58476d1ce4e5b9
	flowHashFin2 = 0x94d049bb133111eb
)

// Bytes returns the key in its C memory layout.
func (k *DatapathFlowKey) Bytes() [40]byte {
	var b [40]byte
	copy(b[0:16], k.Src[:])
	copy(b[16:32], k.Dst[:])
	// __be16 fields hold network-order bytes; the generated uint16 is their
	// little-endian reading (bpf2go objects are bpfel only).
	binary.LittleEndian.PutUint16(b[32:], k.Sport)
	binary.LittleEndian.PutUint16(b[34:], k.Dport)
	b[36] = k.Proto
	copy(b[37:40], k.Pad[:])
	return b
}

// FlowHash is the flow hash of flow.h: it picks the Maglev slot
// (MaglevSlot) and the varying bits of the outer source address.
func FlowHash(k *DatapathFlowKey, seed uint32) uint64 {
	b := k.Bytes()
	h := uint64(flowHashInit) ^ uint64(seed)
	for i := 0; i < 40; i += 8 {
		h ^= binary.LittleEndian.Uint64(b[i:])
		h *= flowHashMul
		h ^= h >> 29
	}
	h ^= h >> 30
	h *= flowHashFin1
	h ^= h >> 27
	h *= flowHashFin2
	h ^= h >> 31
	return h
}

// ConntrackHash is flow_ct_hash of flow.h: the hash whose bits 32 and up
// pick a flow's conntrack set (ConntrackIndex). It takes no seed.
func ConntrackHash(k *DatapathFlowKey) uint64 {
	b := k.Bytes()
	var x uint64
	for i := 0; i < 40; i += 8 {
		x ^= binary.LittleEndian.Uint64(b[i:])
	}
	x ^= x >> 32
	return x * flowHashFin1
}

// ConntrackIndex returns the conntrack set a flow with conntrack hash
// hash (ConntrackHash; an older object's conntrack: FlowHash) uses on cpu,
// for a datapath with sets sets per CPU (the ct_sets constant).
func ConntrackIndex(hash uint64, cpu, sets uint32) uint32 {
	return cpu*sets + uint32(hash>>32)%sets
}

// MaglevSlot returns the Maglev table slot of a flow hash.
func MaglevSlot(hash uint64, tableSize uint32) uint32 { return uint32(hash) % tableSize }

// NewFlowKey builds a flow key; ports are in host order (0 for flows hashed
// without ports).
func NewFlowKey(src, dst netip.Addr, sport, dport uint16, proto uint8) DatapathFlowKey {
	return DatapathFlowKey{Src: Addr16(src), Dst: Addr16(dst), Sport: Htons(sport), Dport: Htons(dport), Proto: proto}
}
