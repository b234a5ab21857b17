package bgp

import (
	"net/netip"
	"slices"
)

// setID names a set of an interner; 0 is the empty set.
type setID uint32

// interner keeps each distinct small slice once, named by a setID and
// counted by its users. The RIB copy and the FIB view hold a route's next
// hops this way: 100,000 learned prefixes share a handful of next-hop
// sets, so each prefix costs a map slot with no pointers in it (nothing
// for the garbage collector to scan, no allocation per prefix) instead of
// a slice of its own. It is not safe for concurrent use.
type interner[T any] struct {
	key  func(b []byte, s []T) []byte // a distinct encoding of s
	ids  map[string]setID
	sets [][]T // by id; [0] is the empty set
	refs []int
	free []setID
	buf  []byte
}

func newInterner[T any](key func([]byte, []T) []byte) *interner[T] {
	return &interner[T]{key: key, ids: map[string]setID{}, sets: [][]T{nil}, refs: []int{0}}
}

// add returns the id of s (the empty set: 0), with one more user. The
// interner keeps its own copy of s.
func (in *interner[T]) add(s []T) setID {
	if len(s) == 0 {
		return 0
	}
	in.buf = in.key(in.buf[:0], s)
	if id, ok := in.ids[string(in.buf)]; ok {
		in.refs[id]++
		return id
	}
	var id setID
	if n := len(in.free); n > 0 {
		id, in.free = in.free[n-1], in.free[:n-1]
		in.sets[id], in.refs[id] = slices.Clone(s), 1
	} else {
		id = setID(len(in.sets))
		in.sets, in.refs = append(in.sets, slices.Clone(s)), append(in.refs, 1)
	}
	in.ids[string(in.buf)] = id
	return id
}

// release drops a user of id; the set is forgotten with its last one.
func (in *interner[T]) release(id setID) {
	if id == 0 {
		return
	}
	if in.refs[id]--; in.refs[id] > 0 {
		return
	}
	in.buf = in.key(in.buf[:0], in.sets[id])
	delete(in.ids, string(in.buf))
	in.sets[id] = nil
	in.free = append(in.free, id)
}

// get returns the set id names, which the caller must not modify.
func (in *interner[T]) get(id setID) []T { return in.sets[id] }

// len is the number of distinct sets held.
func (in *interner[T]) len() int { return len(in.ids) }

// appendAddr appends a with its length first (so that encodings of
// several addresses, zones included, never run into each other).
func appendAddr(b []byte, a netip.Addr) []byte {
	n := len(b)
	b = append(b, 0)
	b, _ = a.AppendBinary(b)
	b[n] = byte(len(b) - n - 1)
	return b
}

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// hopsKey encodes a multipath set (ribState).
func hopsKey(b []byte, hs []hop) []byte {
	for _, h := range hs {
		b = appendAddr(b, h.peer)
		b = appendU32(b, h.id)
		b = appendAddr(b, h.nexthop)
		b = appendAddr(b, h.ll)
	}
	return b
}

// nexthopsKey encodes a FIB route's next hops.
func nexthopsKey(b []byte, nhs []nexthop) []byte {
	for _, nh := range nhs {
		b = appendAddr(b, nh.addr)
		b = appendU32(b, uint32(nh.ifindex))
	}
	return b
}
