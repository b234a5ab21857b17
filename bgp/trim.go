package bgp

import (
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
)

const (
	// bulkRoutes is the size of a route change (announced or withdrawn
	// paths, or the routes a new session is sent) after which the
	// speaker hands the memory the change needed back to the OS.
	bulkRoutes = 10000
	// trimQuiet is how long bulk work must have stopped before that: GoBGP
	// exports and packs the routes for each session after the change
	// returns (100,000 routes: 1-3 s), which is where most of the
	// transient memory goes, and the release must not compete with it.
	// The FIB resync tick checks it, so the release comes 10-15 s after
	// the last bulk work.
	trimQuiet = 10 * time.Second
)

// memTrim returns the memory of a bulk route change to the OS once the
// change has settled. Loading or sending 100,000 routes allocates several
// times the RIB's own size in short-lived objects (GoBGP clones every path
// for the best-path watchers and for each peer's export); the Go runtime
// keeps the freed pages, so the process would stay at that peak (about
// 2.5 times the live heap) although the heap is back at the RIB's size.
// This changes no GC setting: it is one forced collection and scavenge
// (debug.FreeOSMemory) per bulk change, tens to a few hundred milliseconds
// of one core. Small changes never trigger it.
type memTrim struct {
	pending atomic.Bool
	last    atomic.Int64 // time of the last bulk work, Unix nanoseconds
	// changed adds up the changes smaller than bulkRoutes (a peer's
	// table arrives in many FIB passes) until they make a bulk change.
	changed atomic.Int64
	// routes is how many routes GoBGP holds for us: what a session that
	// comes up is sent.
	routes atomic.Int64
}

// bulk records work on n routes: a bulk change when n, or the work
// recorded since the last bulk change, reaches bulkRoutes.
func (m *memTrim) bulk(n int, now time.Time) {
	if n <= 0 {
		return
	}
	if n < bulkRoutes && m.changed.Add(int64(n)) < bulkRoutes {
		return
	}
	m.changed.Store(0)
	m.last.Store(now.UnixNano())
	m.pending.Store(true)
}

// sessionUp records that a session came up: GoBGP sends it every route.
func (m *memTrim) sessionUp(now time.Time) { m.bulk(int(m.routes.Load()), now) }

// due reports, once per bulk change, that the change has been quiet for
// trimQuiet.
func (m *memTrim) due(now time.Time) bool {
	if !m.pending.Load() || now.Sub(time.Unix(0, m.last.Load())) < trimQuiet {
		return false
	}
	return m.pending.CompareAndSwap(true, false)
}

// releaseMemory runs the collection and returns the free pages to the OS.
func (s *Speaker) releaseMemory() {
	start := time.Now()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.log.Info("bgp: returned the memory of a bulk route change to the OS",
		"took", time.Since(start).Round(time.Millisecond), "heap_mb", ms.HeapAlloc>>20, "released_mb", ms.HeapReleased>>20)
}
