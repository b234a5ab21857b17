package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/config"
)

// parseConfig decodes and validates an aird.toml fragment.
func parseConfig(t *testing.T, toml string) *config.Config {
	t.Helper()
	c, err := config.Parse("test.toml", []byte(toml))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", toml, err)
	}
	return c
}

// testLogger logs to stderr, which the outer run shows.
func testLogger() *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("AIRD_BGP_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// newSpeaker builds a speaker for the lab from aird.toml text; opts, if
// any, adjust its options.
func newSpeaker(t *testing.T, l labSpec, toml string, opts ...func(*Options)) *Speaker {
	t.Helper()
	c := parseConfig(t, toml)
	o := Options{
		Config:        c.BGP,
		Node:          c.Node,
		Logger:        testLogger(),
		FIBTable:      l.Table,
		RouteProtocol: l.Proto,
		StateDir:      l.StateDir,
	}
	for _, f := range opts {
		f(&o)
	}
	sp, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// startSpeaker builds a speaker, gives it routes and starts it; it is shut
// down when the test ends.
func startSpeaker(t *testing.T, l labSpec, toml string, routes []Route, opts ...func(*Options)) *Speaker {
	t.Helper()
	sp := newSpeaker(t, l, toml, opts...)
	if err := sp.SetAdvertised(routes); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Stop(StopShutdown) })
	return sp
}

// eventually polls cond every 100ms for up to d; it fails the test with
// what the last call said.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for {
		ok, msg := cond()
		if ok {
			return time.Since(start)
		}
		last = msg
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s; last: %s", what, d, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// neighborNamed returns the speaker's view of the peer with this name.
func neighborNamed(sp *Speaker, name string) Neighbor {
	for _, n := range sp.Neighbors() {
		if n.Name == name {
			return n
		}
	}
	return Neighbor{}
}

// neighbor returns the speaker's view of the peer at addr.
func neighbor(sp *Speaker, addr string) Neighbor {
	for _, n := range sp.Neighbors() {
		if n.Address.String() == addr {
			return n
		}
	}
	return Neighbor{}
}

func waitEstablished(t *testing.T, sp *Speaker, addr string, d time.Duration) Neighbor {
	t.Helper()
	var n Neighbor
	took := eventually(t, d, "session with "+addr+" established", func() (bool, string) {
		n = neighbor(sp, addr)
		return n.State == "established", fmt.Sprintf("%+v", n)
	})
	t.Logf("session with %s established after %s", addr, took.Round(time.Millisecond))
	return n
}

// ip runs ip(8) and returns its output.
func ip(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fibRoutesOf lists the speaker's routes in the node namespace.
func fibRoutesOf(t *testing.T, l labSpec, fam string) string {
	t.Helper()
	args := []string{"-n", l.Node, fam, "route", "show", "table", strconv.Itoa(l.Table), "proto", strconv.Itoa(l.Proto)}
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "FIB table does not exist") {
			return "" // nothing was ever installed in it
		}
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// birdRoute returns `show route PREFIX all` from BIRD, "" when absent.
func birdRoute(t *testing.T, tor torSpec, prefix string) string {
	t.Helper()
	out, err := tor.bird().Cmd("show", "route", prefix, "all")
	if strings.Contains(out, "Network not found") {
		return ""
	}
	if err != nil {
		t.Fatalf("birdc: %v\n%s", err, out)
	}
	if !strings.Contains(out, prefix) {
		return ""
	}
	return out
}

// birdLog returns what BIRD logged so far.
func birdLog(t *testing.T, tor torSpec) string {
	t.Helper()
	b, err := os.ReadFile(tor.Log)
	if err != nil {
		t.Fatalf("BIRD's log: %v", err)
	}
	return string(b)
}

var birdCountRE = regexp.MustCompile(`(\d+) of \d+ routes for \d+ networks in table (\w+)`)

// birdCount returns how many routes BIRD has from protocol proto in table.
func birdCount(t *testing.T, tor torSpec, proto, table string) int {
	t.Helper()
	out, err := tor.bird().Cmd("show", "route", "protocol", proto, "count")
	if err != nil {
		t.Fatalf("birdc: %v\n%s", err, out)
	}
	for _, m := range birdCountRE.FindAllStringSubmatch(out, -1) {
		if m[2] == table {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	return 0
}

var birdProtoRE = regexp.MustCompile(`(?m)^(\S+)\s+BGP\s+\S+\s+(\S+)\s+(\S+)\s+(\S+)`)

// birdSession returns BIRD's state of a BGP protocol ("Established", ...)
// and the time of its last state change.
func birdSession(t *testing.T, tor torSpec, proto string) (state, since string) {
	t.Helper()
	out, err := tor.bird().Cmd("show", "protocols", proto)
	if err != nil {
		t.Fatalf("birdc: %v\n%s", err, out)
	}
	for _, m := range birdProtoRE.FindAllStringSubmatch(out, -1) {
		if m[1] == proto {
			return m[4], m[3]
		}
	}
	return "", ""
}

// birdOpts describes a BIRD switch talking eBGP (AS 65100+index) to the
// node (AS nodeAS).
type birdOpts struct {
	nodeAS uint32
	extra  string // inside the bgp protocol
	// export is the filter of both channels ("none" when empty), e.g.
	// "where source = RTS_STATIC" to send the statics.
	export string
	// statics are blackhole routes, IPv6 or IPv4, for export.
	statics []string
	// recursiveVia makes the IPv6 channel resolve next hops through the
	// table, for a switch that reaches the node's underlay address
	// through another link: a static route for it via the node is added.
	recursiveVia string
	// unnumbered peers with the node's link-local address on the link.
	unnumbered bool
	// noExtNH leaves extended next hop off on the IPv4 channel, as most
	// vendors default: the switch refuses IPv4 routes with an IPv6 next
	// hop.
	noExtNH bool
	// top is more configuration at the top level (protocol bfd ...).
	top string
}

func birdConf(o birdOpts) func(tor torSpec) string {
	return func(tor torSpec) string {
		export := o.export
		if export == "" {
			export = "none"
		}
		var b strings.Builder
		fmt.Fprintf(&b, "router id 10.255.0.%d;\nlog stderr all;\n", tor.Index)
		b.WriteString("protocol device { scan time 10; }\n")
		b.WriteString("protocol kernel kernel6 { ipv6 { import none; export where source = RTS_BGP; }; merge paths on; }\n")
		b.WriteString("protocol kernel kernel4 { ipv4 { import none; export where source = RTS_BGP; }; }\n")
		var s4, s6 []string
		for _, s := range o.statics {
			if strings.Contains(s, ":") {
				s6 = append(s6, fmt.Sprintf("  route %s blackhole;\n", s))
			} else {
				s4 = append(s4, fmt.Sprintf("  route %s blackhole;\n", s))
			}
		}
		channel := ""
		if o.recursiveVia != "" {
			s6 = append(s6, fmt.Sprintf("  route %s via %s;\n", o.recursiveVia, tor.NodeAddr))
			channel = " gateway recursive; igp table master6;"
		}
		if len(s6) > 0 {
			b.WriteString("protocol static static6 { ipv6;\n" + strings.Join(s6, "") + "}\n")
		}
		if len(s4) > 0 {
			b.WriteString("protocol static static4 { ipv4;\n" + strings.Join(s4, "") + "}\n")
		}
		neighbor := tor.NodeAddr
		if o.unnumbered {
			neighbor = fmt.Sprintf("%s %% '%s'", tor.NodeAddr, tor.Dev)
			o.extra += fmt.Sprintf(" interface %q;", tor.Dev)
		}
		extNH := " extended next hop on;"
		if o.noExtNH {
			extNH = ""
		}
		b.WriteString(o.top)
		fmt.Fprintf(&b, `protocol bgp node1 {
  local as %d; neighbor %s as %d;
  connect delay time 1; connect retry time 1; error wait time 1, 2;
  %s
  ipv6 { import all; export %s;%s };
  ipv4 { import all; export %s;%s };
}
`, 65100+tor.Index, neighbor, o.nodeAS, o.extra, export, channel, export, extNH)
		return b.String()
	}
}

// tor1TOML is the node (AS 65001) with one peer, tor1 at addr (AS 65101);
// extra goes at the end of the peer's table (keys, then sub-tables such
// as [bgp.peers.import]).
func tor1TOML(l labSpec, addr, extra string) string {
	return nodeTOML(l) + fmt.Sprintf(`
[bgp]
asn = 65001
connect-retry = "1s"
[[bgp.peers]]
name = "tor1"
address = %q
asn = 65101
%s
`, addr, extra)
}

// nodeTOML renders the [node] section: the underlay is the node's
// address on the first link.
func nodeTOML(l labSpec) string {
	return fmt.Sprintf("[node]\nname = \"node1\"\nrouter-id = \"10.255.255.1\"\nunderlay = [%q]\n", l.Tors[0].NodeAddr)
}

// prefixes makes n /128s from base.
func prefixes(base string, n int) []Route {
	a := netip.MustParseAddr(base)
	out := make([]Route, n)
	for i := range out {
		out[i] = Route{Prefix: netip.PrefixFrom(a, 128)}
		a = a.Next()
	}
	return out
}

// sameInstant compares two BIRD "since" stamps (15:04:05.000). BIRD may
// restamp a protocol a millisecond later without a reset (seen after a
// route refresh); a real reset and re-establishment takes at least the
// connect retry time (1s here), so anything under 500ms is the same session.
func sameInstant(a, b string) bool {
	ta, errA := time.Parse("15:04:05.000", a)
	tb, errB := time.Parse("15:04:05.000", b)
	if errA != nil || errB != nil {
		return a == b
	}
	d := ta.Sub(tb)
	return d > -500*time.Millisecond && d < 500*time.Millisecond
}
