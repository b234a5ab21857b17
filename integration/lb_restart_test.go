package integration

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/testutil"
)

// TestLBRestartKeepsHealthAndDrain: a restarted aird keeps the data
// plane's view of its backends. A backend that was down when aird
// restarted stays out of the Maglev table - from READY on, and while the
// new process's probes (fall = 3) have not yet called it down - instead of
// coming back as healthy until they do; and a backend drained with `airctl
// lb drain` is still drained after the restart (the state directory keeps
// it) until `airctl lb undrain`. New connections meanwhile reach only the
// backends that should have them.
func TestLBRestartKeepsHealthAndDrain(t *testing.T) {
	l := newLBLab(t)
	const b1, b2 = "fd00:2::2", "fd00:3::2"
	ids := pinnedBackendIDs(t, l.lb.pinPath)
	if _, ok := ids[b1]; !ok || len(ids) != 2 {
		t.Fatalf("backend ids %v", ids)
	}

	// b2's server stops: its probes fail, it leaves the table.
	l.stopServer[1]()
	l.waitHealthy(t, b1)
	l.restartKeeping(t, "b2 down", ids[b2], ids[b1], "b1")
	// The new process's own probes agree once they have answered.
	if !testutil.WaitFor(10*time.Second, func() bool {
		for _, b := range l.backendHealth(t) {
			if b.Address.String() == b2 {
				return b.Health.Known && !b.Health.Healthy && b.Health.Checks > 0
			}
		}
		return false
	}) {
		t.Fatal("timed out waiting for b2 probed down by the restarted aird")
	}
	if tab := pinnedTable(t, l.lb.pinPath, labVIP, 8080); tab[ids[b2]] != 0 {
		t.Fatalf("b2 is in the table after its probes failed: %v", tab)
	}

	// b2 back; b1 drained, then a restart.
	l.stopServer[1] = nameServer(t, l.backendNS[1], "b2")
	l.waitHealthy(t, b1, b2)
	if _, errs, code := l.lb.airctl("lb", "drain", "web", b1); code != 0 {
		t.Fatalf("airctl lb drain: %s", errs)
	}
	if !testutil.WaitFor(10*time.Second, func() bool { return pinnedTable(t, l.lb.pinPath, labVIP, 8080)[ids[b1]] == 0 }) {
		t.Fatal("timed out waiting for b1 out of the table")
	}
	l.restartKeeping(t, "b1 drained", ids[b1], ids[b2], "b2")
	if !backendState(t, l, b1).Drained {
		t.Fatal("airctl lb backends does not show b1 drained after the restart")
	}
	if _, errs, code := l.lb.airctl("lb", "undrain", "web", b1); code != 0 {
		t.Fatalf("airctl lb undrain: %s", errs)
	}
	if !testutil.WaitFor(10*time.Second, func() bool { return pinnedTable(t, l.lb.pinPath, labVIP, 8080)[ids[b1]] > 0 }) {
		t.Fatal("timed out waiting for b1 back in the table")
	}
}

// restartKeeping restarts the LB's aird and checks, from READY on for
// 2 s (more than the fall = 3 probes at 300 ms a new process would need
// to call a backend down), that backend id out never is in the table and
// id in always is, and that new connections reach only the server named
// who.
func (l *lbLab) restartKeeping(t *testing.T, what string, out, in uint32, who string) {
	t.Helper()
	l.lb.stopForRestart()
	l.lb.start()
	deadline := time.Now().Add(2 * time.Second)
	asked := 0
	for time.Now().Before(deadline) {
		tab := pinnedTable(t, l.lb.pinPath, labVIP, 8080)
		if tab[out] != 0 || tab[in] == 0 {
			t.Fatalf("%s: the restarted aird's table has %v (backend id %d must be out, %d in)", what, tab, out, in)
		}
		got, err := l.ask(t)
		if err != nil || got != who {
			t.Fatalf("%s: a new connection after the restart: %q, %v (want %s)", what, got, err, who)
		}
		asked++
	}
	t.Logf("%s: %d connections in the 2 s after READY, all to %s", what, asked, who)
}

// pinnedBackendIDs reads the backend ids of a running aird from its
// pinned backends map.
func pinnedBackendIDs(t *testing.T, pin string) map[string]uint32 {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(filepath.Join(pin, "maps", bpf.DatapathMapBackends), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := map[string]uint32{}
	var id uint32
	var be bpf.DatapathBackend
	it := m.Iterate()
	for it.Next(&id, &be) {
		if be.Flags&uint32(bpf.DatapathBackendFlagsBACKEND_F_VALID) != 0 {
			out[netip.AddrFrom16(be.Addr).Unmap().String()] = id
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// backendState is the LB's view of one backend of service "web".
func backendState(t *testing.T, l *lbLab, addr string) api.LBBackendState {
	t.Helper()
	for _, b := range l.backendHealth(t) {
		if b.Address.String() == addr {
			return b
		}
	}
	t.Fatalf("no backend %s in service web", addr)
	return api.LBBackendState{}
}
