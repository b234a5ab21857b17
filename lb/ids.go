package lb

import (
	"fmt"
	"net/netip"
)

// IDs assigns the data plane's ids: a vip id to every service key, a
// backend id to every backend address (one id per address, whichever
// services it is in). Conntrack entries refer to ids, so an id freed is
// handed out again only after every id never used, and then oldest freed
// first: an established flow of a removed service or backend does not
// meet its successor soon. Taking and releasing an id is O(1) amortized.
//
// The manager owns the IDs; the programmer takes ids from it and records
// there the ids an earlier process left in the maps (Dataplane.Adopt).
// IDs is not safe for concurrent use: the manager serializes it.
type IDs struct {
	vips      idSpace
	backends  idSpace
	vipOf     map[ServiceKey]uint32
	backendOf map[netip.Addr]uint32
	addrOf    map[uint32]netip.Addr // backend id -> its address
}

// NewIDs returns an allocator for lim's id spaces: vip ids 0 ..
// MaxVIPs-1, backend ids 1 .. MaxBackends.
func NewIDs(lim Limits) *IDs {
	return &IDs{
		vips:      newIDSpace(0, lim.MaxVIPs),
		backends:  newIDSpace(1, lim.MaxBackends+1),
		vipOf:     map[ServiceKey]uint32{},
		backendOf: map[netip.Addr]uint32{},
		addrOf:    map[uint32]netip.Addr{},
	}
}

// VIP returns the vip id of k.
func (x *IDs) VIP(k ServiceKey) (uint32, bool) {
	id, ok := x.vipOf[k]
	return id, ok
}

// Backend returns the backend id of address a.
func (x *IDs) Backend(a netip.Addr) (uint32, bool) {
	id, ok := x.backendOf[a.Unmap()]
	return id, ok
}

// backendAddr returns the address of backend id.
func (x *IDs) backendAddr(id uint32) (netip.Addr, bool) {
	a, ok := x.addrOf[id]
	return a, ok
}

// FreeVIPs and FreeBackends return how many ids can still be taken.
func (x *IDs) FreeVIPs() int     { return x.vips.available() }
func (x *IDs) FreeBackends() int { return x.backends.available() }

// takeVIP assigns k a vip id.
func (x *IDs) takeVIP(k ServiceKey) (uint32, error) {
	id, ok := x.vips.take()
	if !ok {
		return 0, fmt.Errorf("vip ids exhausted (%d, lb.max-vips)", x.vips.size())
	}
	x.vipOf[k] = id
	return id, nil
}

// takeBackend assigns address a a backend id.
func (x *IDs) takeBackend(a netip.Addr) (uint32, error) {
	id, ok := x.backends.take()
	if !ok {
		return 0, fmt.Errorf("backend ids exhausted (%d, lb.max-backends)", x.backends.size())
	}
	x.backendOf[a.Unmap()] = id
	x.addrOf[id] = a.Unmap()
	return id, nil
}

func (x *IDs) releaseVIP(k ServiceKey) {
	if id, ok := x.vipOf[k]; ok {
		delete(x.vipOf, k)
		x.vips.release(id)
	}
}

func (x *IDs) releaseBackend(a netip.Addr) {
	if id, ok := x.backendOf[a.Unmap()]; ok {
		delete(x.backendOf, a.Unmap())
		delete(x.addrOf, id)
		x.backends.release(id)
	}
}

// adoptVIP and adoptBackend record an id found in the maps.
func (x *IDs) adoptVIP(k ServiceKey, id uint32) error {
	if err := x.vips.mark(id); err != nil {
		return fmt.Errorf("vip %s: %w", k, err)
	}
	x.vipOf[k] = id
	return nil
}

func (x *IDs) adoptBackend(a netip.Addr, id uint32) error {
	if err := x.backends.mark(id); err != nil {
		return fmt.Errorf("backend %s: %w", a, err)
	}
	x.backendOf[a.Unmap()] = id
	x.addrOf[id] = a.Unmap()
	return nil
}

// adopted finishes adoption: ids below the highest adopted one that no
// adopted entry uses are free, lowest first.
func (x *IDs) adopted() {
	x.vips.settle()
	x.backends.settle()
}

// idSpace hands out the ids lo .. hi-1: never-used ids first (next and
// up), then freed ids in the order they were freed (a FIFO: free[head:]).
type idSpace struct {
	lo, hi, next uint32
	free         []uint32
	head         int
	used         []uint64 // bitmap over lo .. hi-1
	inUse        int
}

func newIDSpace(lo, hi uint32) idSpace {
	hi = max(hi, lo)
	return idSpace{lo: lo, hi: hi, next: lo, used: make([]uint64, (hi-lo+63)/64)}
}

func (s *idSpace) size() int      { return int(s.hi - s.lo) }
func (s *idSpace) available() int { return s.size() - s.inUse }

func (s *idSpace) isUsed(id uint32) bool { i := id - s.lo; return s.used[i/64]&(1<<(i%64)) != 0 }
func (s *idSpace) setUsed(id uint32, on bool) {
	i := id - s.lo
	if on {
		s.used[i/64] |= 1 << (i % 64)
		s.inUse++
	} else {
		s.used[i/64] &^= 1 << (i % 64)
		s.inUse--
	}
}

func (s *idSpace) take() (uint32, bool) {
	if s.next < s.hi {
		id := s.next
		s.next++
		s.setUsed(id, true)
		return id, true
	}
	for s.head < len(s.free) {
		id := s.free[s.head]
		s.head++
		if s.head > 1024 && s.head*2 > len(s.free) {
			s.free = append(s.free[:0], s.free[s.head:]...)
			s.head = 0
		}
		if !s.isUsed(id) { // adoption may have marked it since
			s.setUsed(id, true)
			return id, true
		}
	}
	return 0, false
}

func (s *idSpace) release(id uint32) {
	if id < s.lo || id >= s.hi || !s.isUsed(id) {
		return
	}
	s.setUsed(id, false)
	s.free = append(s.free, id)
}

func (s *idSpace) mark(id uint32) error {
	if id < s.lo || id >= s.hi {
		return fmt.Errorf("id %d out of range %d..%d", id, s.lo, s.hi-1)
	}
	if s.isUsed(id) {
		return fmt.Errorf("id %d found twice", id)
	}
	s.setUsed(id, true)
	s.next = max(s.next, id+1)
	return nil
}

func (s *idSpace) settle() {
	s.free, s.head = s.free[:0], 0
	for id := s.lo; id < s.next; id++ {
		if !s.isUsed(id) {
			s.free = append(s.free, id)
		}
	}
}
