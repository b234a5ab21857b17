package bgp

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/config"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
)

const unitTOML = `
[node]
name = "n1"
router-id = "10.255.255.1"
underlay = ["fd00:100:1::2", "10.100.1.2"]
[bgp]
asn = 65001
communities = ["65001:100", "no-export"]
large-communities = ["4200000000:1:1"]
[[bgp.peers]]
name = "tor1"
address = "fd00:100:1::1"
asn = 65101
med = 50
prepend = 2
communities = ["65001:200"]
[bgp.peers.import]
prefixes = ["::/0", "0.0.0.0/0", "fd00:dd::/32 le 64"]
[[bgp.peers]]
name = "tor2"
address = "10.100.2.1"
asn = "internal"
families = ["ipv4"]
hold-time = "30s"
keepalive-time = "10s"
`

func TestOptionsValidate(t *testing.T) {
	c := parseConfig(t, unitTOML)
	good := Options{Config: c.BGP}.withDefaults()
	if err := good.validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if good.FIBTable != 254 || good.RouteProtocol != DefaultRouteProtocol || good.StateDir != DefaultStateDir || good.Logger == nil {
		t.Errorf("defaults not applied: %+v", good)
	}
	for name, o := range map[string]Options{
		"no config":      {FIBTable: 254, RouteProtocol: 201, StateDir: "/run/x"},
		"local table":    {Config: c.BGP, FIBTable: 255, RouteProtocol: 201, StateDir: "/run/x"},
		"kernel proto":   {Config: c.BGP, FIBTable: 254, RouteProtocol: 2, StateDir: "/run/x"},
		"proto too big":  {Config: c.BGP, FIBTable: 254, RouteProtocol: 256, StateDir: "/run/x"},
		"relative state": {Config: c.BGP, FIBTable: 254, RouteProtocol: 201, StateDir: "run"},
	} {
		if err := o.validate(); err == nil {
			t.Errorf("%s: validate accepted %+v", name, o)
		}
	}
}

func TestBuildPeers(t *testing.T) {
	c := parseConfig(t, unitTOML)
	peers, err := buildPeers(c.BGP)
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := peers[0].session, peers[1].session
	want1 := session{
		address: netip.MustParseAddr("fd00:100:1::1"), peerAS: 65101, localAS: 65001,
		families: famIPv4 | famIPv6, holdTime: 9, keepalive: 3, connectRetry: 5,
		gracefulRestart: true, restartTime: 120,
	}
	if p1 != want1 {
		t.Errorf("tor1 session\n got %+v\nwant %+v", p1, want1)
	}
	if p2.peerAS != 65001 || p2.families != famIPv4 || p2.holdTime != 30 || p2.keepalive != 10 {
		t.Errorf("tor2 session %+v: want internal (AS 65001), ipv4, 30s/10s", p2)
	}

	ap := p1.apiPeer(true)
	if ap.Conf.PeerAsn != 65101 || !ap.GracefulRestart.LocalRestarting || ap.GracefulRestart.RestartTime != 120 ||
		ap.GracefulRestart.DeferralTime != maxDeferral || len(ap.AfiSafis) != 2 || ap.TtlSecurity != nil {
		t.Errorf("api peer: %v", ap)
	}
}

func TestBuildPeersRefuses(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, []byte("k\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		bgp, peer, want string
		passive         bool // set after parsing: the file check refuses it already
	}{
		"password mode": {"", "address = \"fd00::1\"\npassword-file = \"" + open + "\"", "readable by group or others", false},
		"password gone": {"", "address = \"fd00::1\"\npassword-file = \"" + filepath.Join(dir, "nope") + "\"", "no such file", false},
		"passive":       {"listen-port = 0", "address = \"fd00::1\"", "passive peer with listen-port 0", true},
	} {
		t.Run(name, func(t *testing.T) {
			c := parseConfig(t, "[node]\nname = \"n\"\nrouter-id = \"10.0.0.1\"\nunderlay = [\"fd00::2\"]\n"+
				"[bgp]\nasn = 65001\n"+tc.bgp+"\n[[bgp.peers]]\nname = \"p\"\nasn = 65100\n"+tc.peer)
			c.BGP.Peers[0].Passive = tc.passive
			_, err := New(Options{Config: c.BGP, Node: c.Node})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestPasswordFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	if err := os.WriteFile(p, []byte("s3cret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pw, err := password(config.Peer{PasswordFile: p})
	if err != nil || pw != "s3cret" {
		t.Errorf("password = %q, %v", pw, err)
	}
	if err := os.WriteFile(p, []byte(strings.Repeat("x", 81)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := password(config.Peer{PasswordFile: p}); err == nil {
		t.Errorf("an 81-byte key was accepted")
	}
	if err := os.WriteFile(p, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := password(config.Peer{PasswordFile: p}); err == nil {
		t.Errorf("an empty key was accepted")
	}
}

func TestBuildPolicies(t *testing.T) {
	c := parseConfig(t, unitTOML)
	peers, err := buildPeers(c.BGP)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := buildPolicies(c.BGP, c.Node, peers, policyState{})
	if err != nil {
		t.Fatal(err)
	}
	var imp, exp *api.Policy
	for _, p := range ps.req.Policies {
		switch p.Name {
		case importPolicy:
			imp = p
		case exportPolicy:
			exp = p
		}
	}
	// Import: local, tor1 IPv6, tor1 IPv4; tor2 has no prefixes.
	if imp == nil || len(imp.Statements) != 3 || imp.Statements[0].Conditions.RouteType != api.Conditions_ROUTE_TYPE_LOCAL {
		t.Fatalf("import policy: %v", imp)
	}
	// Export: tor1 IPv6 and IPv4, tor2 IPv4.
	if exp == nil || len(exp.Statements) != 3 {
		t.Fatalf("export policy: %v", exp)
	}
	a := exp.Statements[0].Actions
	if got := strings.Join(a.Community.Communities, " "); got != "4259905636 4259905736 4294967041" {
		t.Errorf("tor1 communities: %s (want 65001:100 65001:200 no-export)", got)
	}
	if a.LargeCommunity.Communities[0] != "4200000000:1:1" || a.Med.Value != 50 || a.AsPrepend.Repeat != 2 || a.AsPrepend.Asn != 65001 {
		t.Errorf("tor1 actions: %v", a)
	}
	if a.Nexthop.Address != "fd00:100:1::2" || exp.Statements[1].Actions.Nexthop.Address != "10.100.1.2" {
		t.Errorf("tor1 (IPv6 session) next hops: %v, %v; want the underlay address of each family",
			a.Nexthop, exp.Statements[1].Actions.Nexthop)
	}
	if nh := exp.Statements[2].Actions.Nexthop; nh == nil || nh.Address != "10.100.1.2" {
		t.Errorf("tor2 (IPv4 session) IPv4 next hop: %v, want the IPv4 underlay", nh)
	}
	var prefixes []string
	for _, d := range ps.req.DefinedSets {
		for _, p := range d.Prefixes {
			prefixes = append(prefixes, p.IpPrefix)
		}
	}
	if strings.Join(prefixes, " ") != "::/0 fd00:dd::/32 0.0.0.0/0" {
		t.Errorf("import prefix sets: %v", prefixes)
	}

	// A policy-only change moves the fingerprint of that peer only.
	c2 := parseConfig(t, strings.Replace(unitTOML, "med = 50", "med = 60", 1))
	peers2, _ := buildPeers(c2.BGP)
	ps2, err := buildPolicies(c2.BGP, c2.Node, peers2, policyState{})
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := peers[0].key, peers[1].key
	if ps.perPeer[k1].exp == ps2.perPeer[k1].exp || ps.perPeer[k1].imp != ps2.perPeer[k1].imp ||
		ps.perPeer[k2] != ps2.perPeer[k2] || peers[0].session != peers2[0].session {
		t.Errorf("fingerprints do not follow a MED change of tor1 only")
	}
}

func TestLocalRoutes(t *testing.T) {
	m, err := localRoutes([]Route{
		{Prefix: netip.MustParsePrefix("fd00:300::10/128"), Communities: []string{"65001:1"}},
		{Prefix: netip.MustParsePrefix("fd00:300::10/128"), Communities: []string{"65001:2", "65001:1"}},
		{Prefix: netip.MustParsePrefix("10.0.0.1/32"), LargeCommunities: []string{"1:2:3"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := m.get(netip.MustParsePrefix("fd00:300::10/128")); m.len() != 2 || a.communities() != "65001:1 65001:2" {
		t.Errorf("merged: %+v", m)
	}
	for _, bad := range []Route{
		{Prefix: netip.MustParsePrefix("fd00:300::10/64")},
		{Prefix: netip.MustParsePrefix("::ffff:10.0.0.1/128")},
		{Prefix: netip.MustParsePrefix("10.0.0.1/32"), Communities: []string{"70000:1"}},
		{Prefix: netip.MustParsePrefix("10.0.0.1/32"), LargeCommunities: []string{"1:2"}},
		{},
	} {
		if _, err := localRoutes([]Route{bad}); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	a4, _ := m.get(netip.MustParsePrefix("10.0.0.1/32"))
	v4 := localRoute{netip.MustParsePrefix("10.0.0.1/32"), a4}
	p, err := v4.path(false, 0)
	if err != nil || p.Family.String() != "ipv4-unicast" || len(p.Attrs) != 4 {
		t.Errorf("IPv4 path: %+v, %v", p, err)
	}
	a6, _ := m.get(netip.MustParsePrefix("fd00:300::10/128"))
	v6 := localRoute{netip.MustParsePrefix("fd00:300::10/128"), a6}
	if p, err := v6.path(false, 0); err != nil || p.Family.String() != "ipv6-unicast" || len(p.Attrs) != 4 {
		t.Errorf("IPv6 path: %+v, %v", p, err)
	}
}

func TestLocalRoutesShareAttributes(t *testing.T) {
	routes := prefixes("fd00:400::1", 1000)
	for i := range routes {
		if i%2 == 1 {
			routes[i].Communities = []string{"65001:7"}
		}
	}
	m, err := localRoutes(routes)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[*routeAttrs]bool{}
	for _, a := range m.all() {
		distinct[a] = true
	}
	if m.len() != 1000 || len(distinct) != 2 {
		t.Errorf("%d routes with %d attribute objects, want 1000 with 2", m.len(), len(distinct))
	}
	// Separately parsed, equal communities compare the same.
	other, _ := localRoutes(routes[1:2])
	a, _ := m.get(routes[1].Prefix)
	b, _ := other.get(routes[1].Prefix)
	if a == b || !a.same(b) {
		t.Errorf("attributes of separate calls: %p %p, same %v", a, b, a.same(b))
	}
}

func TestRouteSet(t *testing.T) {
	s := newRouteSet(0)
	a := newRouteAttrs(nil, nil)
	v4, v6 := netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00::/64")
	s.set(v4, a)
	s.set(v6, newRouteAttrs(nil, nil)) // equal: stored once
	if got, ok := s.get(v4); !ok || got != a || len(s.attrs) != 1 {
		t.Errorf("get %s: %v %v, %d attribute sets", v4, got, ok, len(s.attrs))
	}
	c := s.clone()
	s.delete(v6)
	seen := map[netip.Prefix]bool{}
	for p := range c.all() {
		seen[p] = true
	}
	if _, ok := s.get(v6); ok || s.len() != 1 || c.len() != 2 || !seen[v4] || !seen[v6] {
		t.Errorf("after delete: set %d routes, clone %v", s.len(), seen)
	}
	if l := s.list(); len(l) != 1 || l[0].prefix != v4 || l[0].attrs != a {
		t.Errorf("list = %+v, want only %s", l, v4)
	}
}

func TestCommunities(t *testing.T) {
	cs, err := parseCommunities([]string{"65535:0", "graceful-shutdown", "1:2"})
	if err != nil || len(cs) != 2 || cs[0] != 1<<16|2 || cs[1] != 0xffff0000 {
		t.Errorf("communities: %v, %v", cs, err)
	}
	for _, bad := range []string{"65536:1", "1", "1:2:3", "no-such-name"} {
		if _, err := parseCommunity(bad); err == nil {
			t.Errorf("accepted community %q", bad)
		}
	}
	lc, err := parseLargeCommunities([]string{"2:0:0", "1:4294967295:0", "2:0:0"})
	if err != nil || len(lc) != 2 || lc[0].String() != "1:4294967295:0" {
		t.Errorf("large communities: %v, %v", lc, err)
	}
}

// fakePaths counts the calls a SetAdvertised makes.
type fakePaths struct {
	adds, dels []int
	failAt     int
	held       map[netip.Prefix]bool
}

func (f *fakePaths) AddPath(r apiutil.AddPathRequest) ([]apiutil.AddPathResponse, error) {
	f.adds = append(f.adds, len(r.Paths))
	if f.failAt > 0 && len(f.adds) == f.failAt {
		return nil, errors.New("boom")
	}
	return make([]apiutil.AddPathResponse, len(r.Paths)), nil
}

func (f *fakePaths) DeletePath(r apiutil.DeletePathRequest) error {
	f.dels = append(f.dels, len(r.Paths))
	for _, p := range r.Paths {
		if !p.Withdrawal {
			return errors.New("not a withdrawal")
		}
	}
	return nil
}

func TestAddPathsBatches(t *testing.T) {
	want, err := localRoutes(prefixes("fd00:400::1", 10000))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePaths{}
	added := newRouteSet(0)
	if n, err := addPaths(f, want, added); err != nil || n != 10000 || added.len() != 10000 {
		t.Fatalf("addPaths: %d, %v", n, err)
	}
	if len(f.adds) != 5 || f.adds[0] != batchSize || f.adds[4] != 10000-4*batchSize {
		t.Errorf("AddPath calls: %v, want 5 batches of up to %d", f.adds, batchSize)
	}
	// Nothing changed: no call.
	f.adds = nil
	if n, err := addPaths(f, want, added); err != nil || n != 0 || len(f.adds) != 0 {
		t.Errorf("re-adding the same set: %d added, %d calls, %v", n, len(f.adds), err)
	}
	var all []localRoute
	for p, a := range want.all() {
		all = append(all, localRoute{p, a})
	}
	if n, err := deletePaths(f, all); err != nil || n != 10000 || len(f.dels) != 5 {
		t.Errorf("deletePaths: %d, %v, calls %v", n, err, f.dels)
	}
	// A failing batch reports what got in before it.
	f = &fakePaths{failAt: 2}
	added = newRouteSet(0)
	if n, err := addPaths(f, want, added); err == nil || n != batchSize || added.len() != batchSize {
		t.Errorf("failing second batch: %d added, %v", n, err)
	}
}

func TestTrackerSync(t *testing.T) {
	c := parseConfig(t, unitTOML)
	peers, _ := buildPeers(c.BGP)
	now := time.Now()
	tr := newTracker(peers, now.Add(time.Minute))
	a1, a2 := peers[0].session.address, peers[1].session.address
	if tr.isSynced(now) {
		t.Fatal("synced with no session up")
	}
	tr.state(a1, true, famIPv6|famIPv4, now)
	tr.state(a2, true, famIPv6|famIPv4, now) // tor2 is configured for IPv4 only
	tr.endOfRIB(a1, famIPv6)
	tr.endOfRIB(a2, famIPv4)
	if tr.isSynced(now) {
		t.Fatal("synced without tor1's IPv4 End-of-RIB")
	}
	tr.endOfRIB(a1, famIPv4)
	if !tr.isSynced(now) {
		t.Fatal("not synced with every End-of-RIB in")
	}
	tr2 := newTracker(peers, now.Add(time.Minute))
	if !tr2.isSynced(now.Add(2 * time.Minute)) {
		t.Fatal("not synced after the deadline")
	}

	over, excluded := tr.count(map[netip.Addr]famCounts{a1: {famIPv6: 1000, famIPv4: 1}, a2: {famIPv4: 3}})
	if len(over) != 1 || over[0] != a1 || !excluded[a1] || excluded[a2] {
		t.Errorf("count: over %v excluded %v", over, excluded)
	}
	over, excluded = tr.count(map[netip.Addr]famCounts{a1: {famIPv6: 1001}})
	if len(over) != 0 || !excluded[a1] {
		t.Errorf("second count: over %v (reset once only), excluded %v", over, excluded)
	}
	tr.state(a1, false, 0, now)
	tr.state(a1, true, famIPv6, now)
	if over, _ := tr.count(map[netip.Addr]famCounts{a1: {famIPv6: 1001}}); len(over) != 1 {
		t.Errorf("after the session came back: over %v, want a new reset", over)
	}
	if rt, _ := tr.byKey(peers[0].key); rt.flaps != 1 || rt.accepted != 1001 || rt.acceptedBy[famIPv6] != 1001 {
		t.Errorf("tor1 runtime: %+v, want 1 flap, 1001 accepted", rt)
	}
}

// An unnumbered peer has no address until discovery finds one; it is
// tracked (and holds up the sync) meanwhile, and keeps its flap count
// when its address changes.
func TestUnnumberedPeer(t *testing.T) {
	c := parseConfig(t, `
[node]
name = "n1"
router-id = "10.255.255.1"
underlay = ["fd00:100:1::2"]
[bgp]
asn = 65001
[[bgp.peers]]
interface = "eth1"
asn = "external"
[bgp.peers.bfd]
enabled = true
min-rx = "200ms"
min-tx = "250ms"
multiplier = 4
`)
	peers, err := buildPeers(c.BGP)
	if err != nil {
		t.Fatal(err)
	}
	p := peers[0]
	if p.key != "interface:eth1" || p.name != "eth1" || p.resolved() || !p.session.linkLocal() || p.session.bindInterface() != "eth1" {
		t.Fatalf("unnumbered peer: %+v", p)
	}
	if b := p.session.bfd; b != (bfdConfig{enabled: true, minRx: 200000, minTx: 250000, multiplier: 4}) {
		t.Errorf("bfd: %+v", b)
	}
	ps, err := buildPolicies(c.BGP, c.Node, peers, policyState{})
	if err != nil || len(ps.req.DefinedSets) != 0 || len(ps.req.Policies[1].Statements) != 0 {
		t.Fatalf("an unresolved peer has policy statements: %v, %v", ps.req, err)
	}

	now := time.Now()
	tr := newTracker(peers, now.Add(time.Minute))
	if tr.isSynced(now) {
		t.Fatal("synced before the unnumbered peer was even found")
	}
	ll := netip.MustParseAddr("fe80::1%eth1")
	peers = resolvePeers(peers, map[string]netip.Addr{"eth1": ll})
	if !peers[0].resolved() || peers[0].session.address != ll {
		t.Fatalf("resolved: %+v", peers[0].session)
	}
	ap := peers[0].session.apiPeer(false)
	if ap.Conf.NeighborAddress != "fe80::1%eth1" || ap.Transport.BindInterface != "eth1" || ap.Bfd == nil ||
		ap.Bfd.RequiredMinimumReceive != 200000 || ap.Bfd.DesiredMinimumTxInterval != 250000 || ap.Bfd.DetectionMultiplier != 4 {
		t.Errorf("api peer: %v", ap)
	}
	ps, err = buildPolicies(c.BGP, c.Node, peers, policyState{})
	if err != nil {
		t.Fatal(err)
	}
	if l := ps.req.DefinedSets[0].List; len(l) != 1 || l[0] != "fe80::1" {
		t.Errorf("neighbour set: %v, want the address without zone", l)
	}
	for _, st := range ps.req.Policies[1].Statements {
		if st.Actions.Nexthop != nil {
			t.Errorf("unnumbered export sets next hop %v: want the session's link-local address", st.Actions.Nexthop)
		}
	}
	tr.setPeers(peers)
	tr.state(ll, true, famIPv6|famIPv4, now)
	tr.state(ll, false, 0, now)
	peers = resolvePeers(peers, map[string]netip.Addr{"eth1": netip.MustParseAddr("fe80::2%eth1")})
	tr.setPeers(peers)
	if rt, ok := tr.byKey("interface:eth1"); !ok || rt.flaps != 1 || rt.up || rt.address.String() != "fe80::2%eth1" {
		t.Errorf("after the address changed: %+v", rt)
	}
}

// Drained, every export statement adds GRACEFUL_SHUTDOWN and the drain
// prepends to the peer's own.
func TestDrainPolicy(t *testing.T) {
	c := parseConfig(t, unitTOML+"[bgp.drain]\nprepend = 3\n")
	peers, _ := buildPeers(c.BGP)
	ps, err := buildPolicies(c.BGP, c.Node, peers, policyState{drained: true})
	if err != nil {
		t.Fatal(err)
	}
	exp := ps.req.Policies[1]
	a := exp.Statements[0].Actions // tor1: prepend 2, communities
	if got := strings.Join(a.Community.Communities, " "); got != "4259905636 4259905736 4294901760 4294967041" || a.AsPrepend.Repeat != 5 {
		t.Errorf("tor1 drained: communities %s prepend %d", got, a.AsPrepend.Repeat)
	}
	a = exp.Statements[2].Actions // tor2: no prepend
	if !slices.Contains(a.Community.Communities, "4294901760") || a.AsPrepend.Repeat != 3 {
		t.Errorf("tor2 drained: %v", a)
	}
	normal, _ := buildPolicies(c.BGP, c.Node, peers, policyState{})
	if normal.perPeer[peers[0].key].exp == ps.perPeer[peers[0].key].exp {
		t.Errorf("draining does not change the export fingerprint")
	}
}

func TestRestartMarker(t *testing.T) {
	m := newRestartMarker(filepath.Join(t.TempDir(), "run"))
	if m.recent(time.Minute) {
		t.Fatal("recent before touch")
	}
	if err := m.touch(); err != nil {
		t.Fatal(err)
	}
	if !m.recent(time.Minute) {
		t.Fatal("not recent after touch")
	}
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(m.path, old, old); err != nil {
		t.Fatal(err)
	}
	if m.recent(time.Minute) {
		t.Fatal("recent when older than the restart time")
	}
	if err := m.remove(); err != nil || m.recent(time.Hour) {
		t.Fatalf("remove: %v", err)
	}
	if err := m.remove(); err != nil {
		t.Fatalf("second remove: %v", err)
	}
}

func TestRestartNeeded(t *testing.T) {
	c := parseConfig(t, unitTOML).BGP
	d := *c
	if err := restartNeeded(c, &d); err != nil {
		t.Fatal(err)
	}
	d.ListenPort = 1179
	if err := restartNeeded(c, &d); !errors.Is(err, ErrRestartNeeded) {
		t.Fatalf("listen-port change: %v", err)
	}
}

func TestFIBHelpers(t *testing.T) {
	nhs := normalize([]nexthop{{addr: netip.MustParseAddr("fd00::2")}, {addr: netip.MustParseAddr("fd00::1")}, {addr: netip.MustParseAddr("fd00::2")}})
	if len(nhs) != 2 || nhs[0].addr.String() != "fd00::1" {
		t.Errorf("normalize: %v", nhs)
	}
	nh, ok := gatewayOf(netip.MustParseAddr("::"), netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fd00::1"), func(netip.Addr) int { return 7 })
	if !ok || nh.ifindex != 7 || nh.addr.String() != "fe80::1" {
		t.Errorf("link-local next hop: %v %v", nh, ok)
	}
	if nh, ok := gatewayOf(netip.MustParseAddr("fd00::9"), netip.MustParseAddr("fe80::1"), netip.Addr{}, nil); !ok || nh.addr.String() != "fd00::9" || nh.ifindex != 0 {
		t.Errorf("global next hop: %v %v", nh, ok)
	}
}

func TestMemTrim(t *testing.T) {
	var m memTrim
	now := time.Now()
	m.bulk(bulkRoutes-1, now)
	if m.due(now.Add(time.Hour)) {
		t.Error("a small change asks for a release")
	}
	m.bulk(bulkRoutes, now)
	if m.due(now.Add(trimQuiet - time.Millisecond)) {
		t.Error("release before the change has been quiet for trimQuiet")
	}
	if !m.due(now.Add(trimQuiet)) || m.due(now.Add(2*trimQuiet)) {
		t.Error("not exactly one release after a bulk change")
	}
	m.routes.Store(bulkRoutes)
	m.sessionUp(now)
	if !m.due(now.Add(trimQuiet)) {
		t.Error("no release after a session was sent every route")
	}
	// A table arriving in small passes adds up to a bulk change.
	for range 9 {
		m.bulk(bulkRoutes/10, now)
	}
	if m.due(now.Add(trimQuiet)) {
		t.Error("release before the small changes add up to bulkRoutes")
	}
	m.bulk(bulkRoutes/10, now)
	if !m.due(now.Add(trimQuiet)) {
		t.Error("no release after small changes that add up to bulkRoutes")
	}
}

func TestSettleFor(t *testing.T) {
	for _, c := range []struct {
		since, want time.Duration
	}{
		{time.Hour, settle},                // quiet: let a burst land
		{settle, settle},                   // the last change is a settle old
		{0, bulkSpacing},                   // a pass just changed the FIB
		{bulkSpacing / 2, bulkSpacing / 2}, // the spacing counts from it
		{bulkSpacing, 0},
		{settle - time.Millisecond, 0},
		{-time.Second, settle}, // the clock went back
	} {
		if got := settleFor(c.since); got != c.want {
			t.Errorf("settleFor(%s) = %s, want %s", c.since, got, c.want)
		}
	}
}

func TestSortChanges(t *testing.T) {
	var in []fibChange
	for _, p := range []string{"fd00:200:0:2::/64", "10.1.0.0/24", "fd00:200::/48", "fd00:200::/64", "fd00:200:0:1::/64",
		"10.0.0.0/24", "fd00:200::/64", "10.1.0.0/24", "::ffff:10.0.0.0/120"} {
		in = append(in, fibChange{prefix: netip.MustParsePrefix(p)})
	}
	var keys []prefixKey
	for _, c := range in {
		keys = append(keys, keyOf(c.prefix))
	}
	var got, gotKeys []string
	for _, c := range sortChanges(in) {
		got = append(got, c.prefix.String())
	}
	// The copy's changed prefixes (ribState.take) come in the same order,
	// each once.
	for _, k := range sortKeys(keys) {
		gotKeys = append(gotKeys, k.prefix().String())
	}
	want := []string{"10.0.0.0/24", "10.1.0.0/24", "::ffff:10.0.0.0/120", "fd00:200::/48", "fd00:200::/64", "fd00:200:0:1::/64", "fd00:200:0:2::/64"}
	if !slices.Equal(got, want) {
		t.Errorf("sortChanges: %v, want %v", got, want)
	}
	if !slices.Equal(gotKeys, want) {
		t.Errorf("sortKeys: %v, want %v", gotKeys, want)
	}
}
