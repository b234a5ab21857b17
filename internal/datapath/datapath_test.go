package datapath

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
)

// env is two namespaces joined by a veth pair: devA in nsA (where the
// datapath attaches) and devB in nsB (where traffic comes from).
type env struct {
	nsA, nsB   string
	devA, devB string
	pinPath    string
	log        *slog.Logger
	logs       *syncBuffer
}

const (
	addrA4 = "192.0.2.1"
	addrB4 = "192.0.2.2"
	addrA6 = "2001:db8::1"
	addrB6 = "2001:db8::2"
)

func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequirePrivileged(t)
	e := &env{
		nsA:  testutil.NewNetns(t, "dpa"),
		nsB:  testutil.NewNetns(t, "dpb"),
		devA: testutil.UniqueName("dpva"),
		devB: testutil.UniqueName("dpvb"),
		logs: &syncBuffer{},
	}
	testutil.Veth(t, e.devA, e.nsA, e.devB, e.nsB)
	testutil.Addr(t, e.nsA, e.devA, addrA4+"/24")
	testutil.Addr(t, e.nsB, e.devB, addrB4+"/24")
	testutil.Addr(t, e.nsA, e.devA, addrA6+"/64")
	testutil.Addr(t, e.nsB, e.devB, addrB6+"/64")

	e.pinPath = testutil.TempPinPath(t)
	t.Cleanup(func() {
		if err := Teardown(e.pinPath); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	e.log = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("datapath log:\n%s", e.logs.String())
		}
	})
	return e
}

// extraVeth adds another veth pair between the namespaces and returns the
// name of its nsA end.
func (e *env) extraVeth(t *testing.T) string {
	t.Helper()
	a, b := testutil.UniqueName("dpvc"), testutil.UniqueName("dpvd")
	testutil.Veth(t, a, e.nsA, b, e.nsB)
	return a
}

func (e *env) open(t *testing.T, mode string) *Datapath {
	t.Helper()
	d, err := Open(Options{PinPath: e.pinPath, XDPMode: mode, Logger: e.log})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// setUplinks calls SetUplinks inside nsA.
func (e *env) setUplinks(t *testing.T, d *Datapath, ifaces ...string) error {
	t.Helper()
	var err error
	testutil.InNetns(t, e.nsA, func() { err = d.SetUplinks(ifaces) })
	return err
}

// xdpState returns netlink's view of XDP on dev in nsA.
func (e *env) xdpState(t *testing.T, dev string) *netlink.LinkXdp {
	t.Helper()
	var l netlink.Link
	var err error
	testutil.InNetns(t, e.nsA, func() { l, err = netlink.LinkByName(dev) })
	if err != nil {
		t.Fatalf("netlink %s: %v", dev, err)
	}
	if l.Attrs().Xdp == nil {
		return &netlink.LinkXdp{}
	}
	return l.Attrs().Xdp
}

func (e *env) requireAttached(t *testing.T, dev string, progID uint32) {
	t.Helper()
	x := e.xdpState(t, dev)
	if !x.Attached || x.ProgId != progID {
		t.Fatalf("%s: xdp attached=%v prog=%d, want attached prog %d", dev, x.Attached, x.ProgId, progID)
	}
}

func (e *env) requireDetached(t *testing.T, dev string) {
	t.Helper()
	if x := e.xdpState(t, dev); x.Attached {
		t.Fatalf("%s: xdp still attached (prog %d)", dev, x.ProgId)
	}
}

// sendUDP sends n datagrams from nsB to dst in nsA and checks they arrive,
// proving the pipeline passes traffic.
func (e *env) sendUDP(t *testing.T, network, dst string, n int) {
	t.Helper()
	var (
		rx  *net.UDPConn
		tx  net.Conn
		err error
	)
	testutil.InNetns(t, e.nsA, func() {
		rx, err = net.ListenUDP(network, &net.UDPAddr{IP: net.ParseIP(dst)})
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", e.nsA, err)
	}
	defer rx.Close()
	testutil.InNetns(t, e.nsB, func() { tx, err = net.Dial(network, rx.LocalAddr().String()) })
	if err != nil {
		t.Fatalf("dial from %s: %v", e.nsB, err)
	}
	defer tx.Close()

	buf := make([]byte, 64)
	for i := range n {
		if _, err := tx.Write([]byte("aird datapath test")); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		_ = rx.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, _, err := rx.ReadFrom(buf); err != nil {
			t.Fatalf("datagram %d over %s did not arrive: %v", i, network, err)
		}
	}
}

func stats(t *testing.T, d *Datapath) map[string]Counter {
	t.Helper()
	ps, err := d.PipelineStats()
	if err != nil {
		t.Fatalf("PipelineStats: %v", err)
	}
	s := ps.Families()
	for _, k := range []string{"ipv4", "ipv6", "other", "malformed"} {
		if _, ok := s[k]; !ok {
			t.Fatalf("Families lacks %q: %v", k, s)
		}
	}
	return s
}

func requireGrew(t *testing.T, family string, before, after map[string]Counter, minPackets uint64) {
	t.Helper()
	dp := after[family].Packets - before[family].Packets
	db := after[family].Bytes - before[family].Bytes
	if dp < minPackets || db < dp*42 {
		t.Fatalf("%s grew by %d packets / %d bytes, want at least %d packets of at least 42 bytes (before %+v, after %+v)",
			family, dp, db, minPackets, before, after)
	}
}

func onlyUplink(t *testing.T, d *Datapath, name string) UplinkStatus {
	t.Helper()
	ups := d.Uplinks()
	if len(ups) != 1 || ups[0].Name != name {
		t.Fatalf("Uplinks() = %+v, want only %s", ups, name)
	}
	return ups[0]
}

func TestAttachCountsTraffic(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, ModeNative)
	if err := e.setUplinks(t, d, e.devA); err != nil {
		t.Fatalf("SetUplinks: %v", err)
	}
	up := onlyUplink(t, d, e.devA)
	if up.Mode != ModeNative || up.Adopted || up.Ifindex == 0 || up.ProgramID == 0 || up.LinkID == 0 {
		t.Fatalf("uplink status %+v, want native, not adopted, with ids", up)
	}
	e.requireAttached(t, e.devA, up.ProgramID)
	if x := e.xdpState(t, e.devA); x.AttachMode != 1 { // XDP_ATTACHED_DRV
		t.Fatalf("attach mode %d, want driver", x.AttachMode)
	}
	if _, err := os.Stat(filepath.Join(e.pinPath, "links", "xdp_"+e.devA)); err != nil {
		t.Fatalf("link pin: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.pinPath, "maps", bpf.MapStats)); err != nil {
		t.Fatalf("map pin: %v", err)
	}

	s0 := stats(t, d)
	e.sendUDP(t, "udp4", addrA4, 3)
	s1 := stats(t, d)
	requireGrew(t, "ipv4", s0, s1, 3)

	e.sendUDP(t, "udp6", addrA6, 3)
	s2 := stats(t, d)
	requireGrew(t, "ipv6", s1, s2, 3)
}

func TestGenericMode(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, ModeGeneric)
	if err := e.setUplinks(t, d, e.devA); err != nil {
		t.Fatalf("SetUplinks: %v", err)
	}
	up := onlyUplink(t, d, e.devA)
	if up.Mode != ModeGeneric {
		t.Fatalf("mode %q, want generic", up.Mode)
	}
	if x := e.xdpState(t, e.devA); !x.Attached || x.AttachMode != 2 { // XDP_ATTACHED_SKB
		t.Fatalf("xdp state %+v, want generic attachment", x)
	}
	s0 := stats(t, d)
	e.sendUDP(t, "udp6", addrA6, 3)
	requireGrew(t, "ipv6", s0, stats(t, d), 3)
}

func TestRestartAdoptsLinksAndMaps(t *testing.T) {
	e := newEnv(t)
	d1 := e.open(t, ModeAuto)
	if err := e.setUplinks(t, d1, e.devA); err != nil {
		t.Fatalf("SetUplinks: %v", err)
	}
	first := onlyUplink(t, d1, e.devA)
	e.sendUDP(t, "udp4", addrA4, 3)
	s1 := stats(t, d1)
	if err := d1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// aird is down: the pinned link keeps the program attached and the
	// pinned map keeps counting.
	e.requireAttached(t, e.devA, first.ProgramID)
	e.sendUDP(t, "udp4", addrA4, 3)

	d2 := e.open(t, ModeAuto)
	s2 := stats(t, d2)
	requireGrew(t, "ipv4", s1, s2, 3) // old counts kept, downtime counted
	if !strings.Contains(e.logs.String(), "adopted pinned map") {
		t.Fatalf("no map adoption logged")
	}

	if err := e.setUplinks(t, d2, e.devA); err != nil {
		t.Fatalf("SetUplinks after restart: %v", err)
	}
	second := onlyUplink(t, d2, e.devA)
	if !second.Adopted || second.LinkID != first.LinkID || second.Mode != first.Mode {
		t.Fatalf("after restart %+v, want adopted link %d in mode %s", second, first.LinkID, first.Mode)
	}
	if second.ProgramID == first.ProgramID {
		t.Fatalf("program %d not replaced by the new one", second.ProgramID)
	}
	e.requireAttached(t, e.devA, second.ProgramID)

	e.sendUDP(t, "udp4", addrA4, 3)
	requireGrew(t, "ipv4", s2, stats(t, d2), 3)

	// Setting the same uplinks again changes nothing.
	if err := e.setUplinks(t, d2, e.devA); err != nil {
		t.Fatalf("SetUplinks again: %v", err)
	}
	if again := onlyUplink(t, d2, e.devA); again != second {
		t.Fatalf("idempotent SetUplinks changed %+v to %+v", second, again)
	}
}

func TestSetUplinksAllOrNothing(t *testing.T) {
	e := newEnv(t)
	devC := e.extraVeth(t)
	d := e.open(t, ModeNative)
	if err := e.setUplinks(t, d, e.devA); err != nil {
		t.Fatalf("SetUplinks: %v", err)
	}
	before := onlyUplink(t, d, e.devA)

	// devC attaches first (names are handled in order), then the missing
	// interface fails: devC must be detached again and devA, which the
	// new set drops, must stay.
	err := e.setUplinks(t, d, devC, "zzmissing0")
	if err == nil || !strings.Contains(err.Error(), "attach xdp to zzmissing0") {
		t.Fatalf("SetUplinks with a missing interface: err = %v, want attach xdp to zzmissing0", err)
	}
	if after := onlyUplink(t, d, e.devA); after != before {
		t.Fatalf("uplink changed by failed SetUplinks: %+v -> %+v", before, after)
	}
	e.requireAttached(t, e.devA, before.ProgramID)
	e.requireDetached(t, devC)
	if _, err := os.Stat(filepath.Join(e.pinPath, "links", "xdp_"+devC)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pin of rolled back %s: %v", devC, err)
	}
	if _, err := os.Stat(filepath.Join(e.pinPath, "links", "xdp_"+e.devA)); err != nil {
		t.Fatalf("pin of %s after rollback: %v", e.devA, err)
	}

	// Bad names are rejected before anything happens.
	if err := e.setUplinks(t, d, "bad/name"); err == nil {
		t.Fatalf("SetUplinks accepted an invalid name")
	}
	onlyUplink(t, d, e.devA)
}

func TestRemoveUplinkDetaches(t *testing.T) {
	e := newEnv(t)
	devC := e.extraVeth(t)
	d := e.open(t, ModeNative)
	if err := e.setUplinks(t, d, e.devA, devC); err != nil {
		t.Fatalf("SetUplinks: %v", err)
	}
	if ups := d.Uplinks(); len(ups) != 2 {
		t.Fatalf("Uplinks() = %+v, want 2", ups)
	}
	progID := d.Uplinks()[0].ProgramID
	e.requireAttached(t, devC, progID)

	if err := e.setUplinks(t, d, e.devA); err != nil {
		t.Fatalf("SetUplinks(devA): %v", err)
	}
	onlyUplink(t, d, e.devA)
	e.requireDetached(t, devC)
	e.requireAttached(t, e.devA, progID)
	if _, err := os.Stat(filepath.Join(e.pinPath, "links", "xdp_"+devC)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pin of removed %s: %v", devC, err)
	}

	if err := e.setUplinks(t, d); err != nil {
		t.Fatalf("SetUplinks(): %v", err)
	}
	if ups := d.Uplinks(); len(ups) != 0 {
		t.Fatalf("Uplinks() = %+v, want none", ups)
	}
	e.requireDetached(t, e.devA)
}

// A restart whose configuration dropped an uplink detaches the link the
// earlier process pinned for it.
func TestRestartDropsStalePins(t *testing.T) {
	e := newEnv(t)
	devC := e.extraVeth(t)
	d1 := e.open(t, ModeNative)
	if err := e.setUplinks(t, d1, e.devA, devC); err != nil {
		t.Fatalf("SetUplinks: %v", err)
	}
	if err := d1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	d2 := e.open(t, ModeNative)
	if err := e.setUplinks(t, d2, e.devA); err != nil {
		t.Fatalf("SetUplinks after restart: %v", err)
	}
	if up := onlyUplink(t, d2, e.devA); !up.Adopted {
		t.Fatalf("%+v not adopted", up)
	}
	e.requireDetached(t, devC)
	if _, err := os.Stat(filepath.Join(e.pinPath, "links", "xdp_"+devC)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pin of dropped %s: %v", devC, err)
	}
}

// A pinned link whose interface was deleted and recreated under the same
// name is replaced, not adopted.
func TestRecreatedInterfaceIsReattached(t *testing.T) {
	e := newEnv(t)
	d1 := e.open(t, ModeNative)
	if err := e.setUplinks(t, d1, e.devA); err != nil {
		t.Fatalf("SetUplinks: %v", err)
	}
	old := onlyUplink(t, d1, e.devA)
	if err := d1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	testutil.Run(t, "ip", "-n", e.nsA, "link", "del", e.devA)
	testutil.Veth(t, e.devA, e.nsA, e.devB, e.nsB)

	d2 := e.open(t, ModeNative)
	if err := e.setUplinks(t, d2, e.devA); err != nil {
		t.Fatalf("SetUplinks: %v", err)
	}
	up := onlyUplink(t, d2, e.devA)
	if up.Adopted || up.Ifindex == old.Ifindex && up.LinkID == old.LinkID {
		t.Fatalf("recreated interface: %+v (old %+v), want a fresh attachment", up, old)
	}
	e.requireAttached(t, e.devA, up.ProgramID)
}

// Switching the configured mode re-attaches the pinned link in the new mode.
func TestRestartWithOtherMode(t *testing.T) {
	e := newEnv(t)
	d1 := e.open(t, ModeGeneric)
	if err := e.setUplinks(t, d1, e.devA); err != nil {
		t.Fatalf("SetUplinks: %v", err)
	}
	_ = d1.Close()
	d2 := e.open(t, ModeNative)
	if err := e.setUplinks(t, d2, e.devA); err != nil {
		t.Fatalf("SetUplinks native: %v", err)
	}
	up := onlyUplink(t, d2, e.devA)
	if up.Mode != ModeNative || up.Adopted {
		t.Fatalf("%+v, want a fresh native attachment", up)
	}
	if x := e.xdpState(t, e.devA); x.AttachMode != 1 {
		t.Fatalf("attach mode %d, want driver", x.AttachMode)
	}
}

func TestIncompatiblePinnedMapIsReplaced(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(filepath.Join(e.pinPath, "maps"), 0o700); err != nil {
		t.Fatal(err)
	}
	bogus, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatalf("create map: %v", err)
	}
	defer bogus.Close()
	if err := bogus.Pin(filepath.Join(e.pinPath, "maps", bpf.MapStats)); err != nil {
		t.Fatalf("pin: %v", err)
	}

	d := e.open(t, ModeNative)
	if !strings.Contains(e.logs.String(), "incompatible") {
		t.Fatalf("no warning about the incompatible map:\n%s", e.logs.String())
	}
	m, err := ebpf.LoadPinnedMap(filepath.Join(e.pinPath, "maps", bpf.MapStats), nil)
	if err != nil {
		t.Fatalf("load replaced pin: %v", err)
	}
	defer m.Close()
	if m.Type() != ebpf.PerCPUArray {
		t.Fatalf("pinned map type %s, want the new PerCPUArray", m.Type())
	}
	if s := stats(t, d); s["ipv4"] != (Counter{}) {
		t.Fatalf("fresh map has counts: %v", s)
	}
}

// A map an earlier version pinned that this object no longer has (renamed
// or dropped by an upgrade, like decap_addrs) is unpinned at start, once
// the new program is attached.
func TestOpenRemovesPinsOfUnknownMaps(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(filepath.Join(e.pinPath, "maps"), 0o700); err != nil {
		t.Fatal(err)
	}
	old, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 16, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatalf("create map: %v", err)
	}
	defer old.Close()
	stale := filepath.Join(e.pinPath, "maps", "decap_addrs")
	if err := old.Pin(stale); err != nil {
		t.Fatalf("pin: %v", err)
	}
	d := e.open(t, ModeNative)
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("stale pin %s removed before the program is attached: %v", stale, err)
	}
	if err := e.setUplinks(t, d, e.devA); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale pin %s still there: %v", stale, err)
	}
	if !strings.Contains(e.logs.String(), "removed the pin of a map this version does not have") {
		t.Fatalf("removal not logged:\n%s", e.logs.String())
	}
	if _, err := os.Stat(filepath.Join(e.pinPath, "maps", "node_addrs")); err != nil {
		t.Fatalf("node_addrs not pinned: %v", err)
	}
}

func TestTeardownRemovesPins(t *testing.T) {
	e := newEnv(t)
	d := e.open(t, ModeNative)
	if err := e.setUplinks(t, d, e.devA); err != nil {
		t.Fatalf("SetUplinks: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	e.requireAttached(t, e.devA, onlyUplinkAfterClose(t, e))

	if err := Teardown(e.pinPath); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if _, err := os.Stat(e.pinPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pin path after Teardown: %v", err)
	}
	e.requireDetached(t, e.devA)
	if err := Teardown(e.pinPath); err != nil {
		t.Fatalf("second Teardown: %v", err)
	}
	// Methods of a closed Datapath fail cleanly.
	if _, err := d.PipelineStats(); err == nil {
		t.Fatalf("PipelineStats after Close succeeded")
	}
	if err := d.SetUplinks(nil); err == nil {
		t.Fatalf("SetUplinks after Close succeeded")
	}
}

// onlyUplinkAfterClose returns the program ID netlink shows on devA.
func onlyUplinkAfterClose(t *testing.T, e *env) uint32 {
	t.Helper()
	x := e.xdpState(t, e.devA)
	if !x.Attached {
		t.Fatalf("%s: xdp detached by Close", e.devA)
	}
	return x.ProgId
}

func TestOpenRejectsNonBPFFS(t *testing.T) {
	testutil.RequirePrivileged(t)
	dir := filepath.Join(t.TempDir(), "pins")
	_, err := Open(Options{PinPath: dir, XDPMode: ModeAuto})
	if err == nil || !strings.Contains(err.Error(), "not on a bpf filesystem") {
		t.Fatalf("Open on %s: err = %v, want not on a bpf filesystem", dir, err)
	}
	if err := Teardown(dir); err == nil {
		t.Fatalf("Teardown outside bpffs succeeded")
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A bridge has no native XDP, so auto mode falls back to generic for it. Its
// name has a dot (like a VLAN subinterface eth0.7), which bpffs forbids in
// pin names.
func TestAutoModeFallbackDottedName(t *testing.T) {
	e := newEnv(t)
	br := testutil.UniqueName("dpbr")[:9] + ".7"
	testutil.Run(t, "ip", "-n", e.nsA, "link", "add", br, "type", "bridge")
	testutil.Run(t, "ip", "-n", e.nsA, "link", "set", br, "up")

	d := e.open(t, ModeAuto)
	if err := e.setUplinks(t, d, e.devA, br); err != nil {
		t.Fatalf("SetUplinks: %v", err)
	}
	ups := d.Uplinks()
	if len(ups) != 2 {
		t.Fatalf("Uplinks() = %+v, want 2", ups)
	}
	modes := map[string]string{}
	for _, up := range ups {
		modes[up.Name] = up.Mode
	}
	if modes[e.devA] != ModeNative || modes[br] != ModeGeneric {
		t.Fatalf("modes %v, want %s native and %s generic", modes, e.devA, br)
	}
	e.requireAttached(t, br, ups[0].ProgramID)

	// Restart: the escaped pin is found and adopted.
	_ = d.Close()
	d2 := e.open(t, ModeAuto)
	if err := e.setUplinks(t, d2, br); err != nil {
		t.Fatalf("SetUplinks after restart: %v", err)
	}
	if up := onlyUplink(t, d2, br); !up.Adopted || up.Mode != ModeGeneric {
		t.Fatalf("%+v, want adopted generic", up)
	}
	e.requireDetached(t, e.devA)
}

func TestSecondOpenOfSamePinPathIsRefused(t *testing.T) {
	pin := testutil.TempPinPath(t)
	t.Cleanup(func() { _ = Teardown(pin) })
	first, err := Open(Options{PinPath: pin, XDPMode: ModeAuto})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{PinPath: pin, XDPMode: ModeAuto}); err == nil || !strings.Contains(err.Error(), "another aird") {
		t.Fatalf("second Open on a locked pin path: %v, want an 'another aird' error", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(Options{PinPath: pin, XDPMode: ModeAuto})
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	again.Close()
}
