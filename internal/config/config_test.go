package config_test

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/config"
)

// examplePath is the complete, commented example shipped with aird.
const examplePath = "../../configs/aird.toml"

// want is one expected error, from a "# want: LINE:COL KEY SUBSTRING" line.
// COL is -1 when written as "*"; KEY "-" stands for an empty key.
type want struct {
	line, col int
	key, sub  string
	src       string
}

func (w want) String() string { return w.src }

// readWants returns the "# want:" lines of a testdata file.
func readWants(t *testing.T, path string) []want {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []want
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text, ok := strings.CutPrefix(sc.Text(), "# want:")
		if !ok {
			continue
		}
		fields := strings.SplitN(strings.TrimSpace(text), " ", 3)
		if len(fields) != 3 {
			t.Fatalf("%s:%d: want line needs LINE:COL KEY SUBSTRING", path, n)
		}
		lineS, colS, ok := strings.Cut(fields[0], ":")
		if !ok {
			t.Fatalf("%s:%d: want position %q is not LINE:COL", path, n, fields[0])
		}
		w := want{key: fields[1], sub: fields[2], src: strings.TrimSpace(text)}
		if w.key == "-" {
			w.key = ""
		}
		if w.line, err = strconv.Atoi(lineS); err != nil {
			t.Fatalf("%s:%d: bad line %q", path, n, lineS)
		}
		if colS == "*" {
			w.col = -1
		} else if w.col, err = strconv.Atoi(colS); err != nil {
			t.Fatalf("%s:%d: bad column %q", path, n, colS)
		}
		out = append(out, w)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (w want) matches(e *config.Error) bool {
	return e.Line == w.line && (w.col < 0 || e.Col == w.col) && e.Key == w.key && strings.Contains(e.Msg, w.sub)
}

// formatError is the documented form of one error line.
func formatError(e *config.Error) string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	return b.String() + e.Msg
}

func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 24 {
		t.Fatalf("only %d bad configs in testdata/bad", len(files))
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".toml"), func(t *testing.T) {
			wants := readWants(t, path)
			if len(wants) == 0 {
				t.Fatalf("%s has no # want: lines", path)
			}
			f, err := config.Load(path)
			if err == nil {
				t.Fatalf("Load(%s) succeeded (node %q); want errors:\n%s", path, f.Node.Name, joinWants(wants))
			}
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load(%s) error %T is not config.Errors: %v", path, err, err)
			}
			ok := len(errs) == len(wants)
			for i := range min(len(errs), len(wants)) {
				if !wants[i].matches(errs[i]) {
					ok = false
				}
			}
			if !ok {
				t.Errorf("Load(%s): got %d errors, want %d\ngot:\n%s\nwant:\n%s", path, len(errs), len(wants), describe(errs), joinWants(wants))
			}
			// Line order, and the documented FILE:LINE:COL: KEY: message form.
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(errs) {
				t.Errorf("Errors.Error() has %d lines for %d errors", len(lines), len(errs))
			}
			for i, e := range errs {
				if i > 0 && (e.Line < errs[i-1].Line || e.Line == errs[i-1].Line && e.Col < errs[i-1].Col) {
					t.Errorf("errors out of order: %v before %v", errs[i-1], e)
				}
				if e.File != path {
					t.Errorf("error %v names file %q, want %q", e, e.File, path)
				}
				if e.Msg == "" {
					t.Errorf("error %v has no message", e)
				}
				if got, want := e.Error(), formatError(e); got != want {
					t.Errorf("Error() = %q, want %q", got, want)
				}
				if i < len(lines) && lines[i] != e.Error() {
					t.Errorf("Errors.Error() line %d = %q, want %q", i, lines[i], e.Error())
				}
			}
		})
	}
}

func describe(errs config.Errors) string {
	var b strings.Builder
	for _, e := range errs {
		key := e.Key
		if key == "" {
			key = "-"
		}
		fmt.Fprintf(&b, "  # want: %d:%d %s %s\n", e.Line, e.Col, key, e.Msg)
	}
	return b.String()
}

func joinWants(ws []want) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString("  # want: " + w.src + "\n")
	}
	return b.String()
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    config.Error
		want string
	}{
		{config.Error{File: "a.toml", Line: 3, Col: 7, Key: "bgp.asn", Msg: "bad"}, "a.toml:3:7: bgp.asn: bad"},
		{config.Error{File: "a.toml", Line: 3, Key: "bgp.asn", Msg: "bad"}, "a.toml:3: bgp.asn: bad"},
		{config.Error{File: "a.toml", Key: "node.underlay", Msg: "missing"}, "a.toml: node.underlay: missing"},
		{config.Error{File: "a.toml", Line: 1, Col: 2, Msg: "syntax error: x"}, "a.toml:1:2: syntax error: x"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	errs := config.Errors{
		{File: "f", Line: 1, Col: 1, Key: "a", Msg: "x"},
		{File: "f", Line: 2, Col: 1, Key: "b", Msg: "y"},
	}
	if got, want := errs.Error(), "f:1:1: a: x\nf:2:1: b: y"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.toml"))
	if err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
	var errs config.Errors
	if errors.As(err, &errs) {
		t.Errorf("a read error is not a config.Errors: %v", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load error %v does not wrap os.ErrNotExist", err)
	}
}

func TestGoodConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := filepath.Glob("../../configs/*.toml") // aird.toml, demo.toml, …
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, shipped...)
	for _, path := range files {
		t.Run(path, func(t *testing.T) {
			f, err := config.Load(path)
			if err != nil {
				t.Fatalf("Load(%s):\n%v", path, err)
			}
			if f.Path != path || len(f.Digest) != 64 {
				t.Errorf("File{Path: %q, Digest: %q}", f.Path, f.Digest)
			}
			if d := config.Diff(f.Config, f.Config); len(d) != 0 {
				t.Errorf("Diff(cfg, cfg) = %v", d)
			}
		})
	}
}

func mustLoad(t *testing.T, path string) *config.File {
	t.Helper()
	f, err := config.Load(path)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", path, err)
	}
	return f
}

func TestMinimalDefaults(t *testing.T) {
	f := mustLoad(t, "testdata/good/01-minimal.toml")
	c := f.Config
	host, _ := os.Hostname()
	if c.Node.Name != host {
		t.Errorf("node.name = %q, want the hostname %q", c.Node.Name, host)
	}
	if got := c.Node.RouterID.String(); got != "10.100.1.1" {
		t.Errorf("node.router-id = %s, want the IPv4 underlay 10.100.1.1", got)
	}
	if c.BGP != nil {
		t.Errorf("bgp = %+v, want nil without a [bgp] section", c.BGP)
	}
	d := config.Default()
	d.Node = c.Node
	if diff := config.Diff(d, c); len(diff) != 0 {
		t.Errorf("a minimal file differs from Default() in %v", diff)
	}
	if c.Datapath.PinPath != config.DefaultPinPath || c.Datapath.XDPMode != "auto" ||
		c.LB.MaglevTableSize != config.DefaultMaglevTableSize || c.LB.ConntrackSize != 1<<20 || !c.LB.ICMPTooBig ||
		c.API.Socket != config.DefaultSocket || c.API.SocketMode != 0o660 ||
		c.Metrics.Listen != "" || c.Metrics.Path != "/metrics" || c.Log.Level != "info" || c.Log.Format != "text" {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestIPv6OnlyNode(t *testing.T) {
	c := mustLoad(t, "testdata/good/02-ipv6-only.toml").Config
	if c.Node.RouterID.IsValid() {
		t.Errorf("node.router-id = %s, want unset (no IPv4 underlay)", c.Node.RouterID)
	}
	if c.BGP == nil || c.BGP.RouterID.String() != "10.255.0.7" {
		t.Fatalf("bgp.router-id = %v, want 10.255.0.7", c.BGP)
	}
	b := c.BGP
	if b.ListenPort != 179 || b.HoldTime.D() != 9*time.Second || b.KeepaliveTime.D() != 3*time.Second ||
		b.ConnectRetry.D() != 5*time.Second || !b.Advertise.PodPrefixes || !b.Advertise.ServiceVIPs ||
		!b.GracefulRestart.Enabled || b.GracefulRestart.RestartTime.D() != 120*time.Second ||
		b.Drain.Wait.D() != 30*time.Second || b.Drain.Prepend != 0 {
		t.Errorf("bgp defaults not applied: %+v", b)
	}
	if len(b.Peers) != 1 {
		t.Fatalf("peers = %d, want 1", len(b.Peers))
	}
	p := b.Peers[0]
	if p.Interface != "eth0" || p.ASN.Kind != "external" || p.ASN.String() != "external" {
		t.Errorf("peer = %+v", p)
	}
	if strings.Join(p.Families, ",") != "ipv6,ipv4" || p.Import.MaxPrefixes != 1000 || len(p.Import.Prefixes) != 0 {
		t.Errorf("peer defaults not applied: %+v", p)
	}
	if p.BFD.Enabled || p.BFD.MinRx.D() != 300*time.Millisecond || p.BFD.MinTx.D() != 300*time.Millisecond || p.BFD.Multiplier != 3 {
		t.Errorf("peer BFD defaults: %+v", p.BFD)
	}
}

func TestExampleConfig(t *testing.T) {
	f := mustLoad(t, examplePath)
	c := f.Config
	if c.Node.Name != "node1" || c.Node.RouterID.String() != "10.255.0.1" || len(c.Node.Underlay) != 2 ||
		strings.Join(c.Node.Uplinks, ",") != "eth0,eth1" {
		t.Errorf("node = %+v", c.Node)
	}
	if c.BGP == nil {
		t.Fatal("no bgp section")
	}
	b := c.BGP
	if b.ASN != 65001 || b.RouterID != c.Node.RouterID || b.ListenPort != 179 || b.GRPCSocket != "" {
		t.Errorf("bgp = %+v", b)
	}
	if len(b.Peers) != 2 {
		t.Fatalf("peers = %d, want 2", len(b.Peers))
	}
	tor1, tor2 := b.Peers[0], b.Peers[1]
	if tor1.Name != "tor1" || tor1.Address.String() != "fd00:100:1::fe" || tor1.ASN.Number != 65100 || tor1.ASN.Kind != "" ||
		!tor1.TTLSecurity || tor1.PasswordFile != "/etc/aird/tor1.key" || tor1.Import.MaxPrefixes != 10 {
		t.Errorf("tor1 = %+v", tor1)
	}
	if !tor1.BFD.Enabled || tor1.BFD.MinRx.D() != 300*time.Millisecond || tor1.BFD.Multiplier != 3 {
		t.Errorf("tor1 BFD = %+v", tor1.BFD)
	}
	// tor2 has no [bgp.peers.bfd]: the defaults apply.
	if tor2.BFD.Enabled || tor2.BFD.MinRx.D() != 300*time.Millisecond || tor2.BFD.MinTx.D() != 300*time.Millisecond || tor2.BFD.Multiplier != 3 {
		t.Errorf("tor2 BFD defaults = %+v", tor2.BFD)
	}
	if tor2.Interface != "eth1" || tor2.ASN.Kind != "external" || tor2.MED != 10 || tor2.Prepend != 1 ||
		strings.Join(tor2.Families, ",") != "ipv6,ipv4" || tor2.HoldTime != 0 {
		t.Errorf("tor2 = %+v", tor2)
	}
	if n := len(tor2.Import.Prefixes); n != 2 {
		t.Fatalf("tor2 import prefixes = %d", n)
	}
	if f := tor2.Import.Prefixes[1]; f.Prefix.String() != "fd00:200::/40" || f.GE != 64 || f.LE != 64 {
		t.Errorf("tor2 filter = %+v", f)
	}
	if len(c.IPAM.Pools) != 3 || len(c.IPAM.PodPrefixes) != 2 || c.IPAM.Pools[2].Kind != "service" {
		t.Errorf("ipam = %+v", c.IPAM)
	}
	if len(c.Services) != 2 {
		t.Fatalf("services = %d, want 2", len(c.Services))
	}
	web, dns := c.Services[0], c.Services[1]
	if web.Port != 443 || web.HealthCheck.Port != 8080 || web.HealthCheck.ExpectStatus != (config.StatusRange{Min: 200, Max: 299}) ||
		len(web.Backends) != 3 || web.Backends[2].Weight != 50 {
		t.Errorf("web = %+v", web)
	}
	if dns.Protocol != "udp" || len(dns.Backends) != 2 {
		t.Fatalf("dns = %+v", dns)
	}
	// Inline backends: weight defaults to 100 unless written (0 drains).
	if dns.Backends[0].Weight != 100 || dns.Backends[1].Weight != 0 {
		t.Errorf("dns weights = %d, %d; want 100, 0", dns.Backends[0].Weight, dns.Backends[1].Weight)
	}
	// An inline health-check table keeps the defaults it does not set, and
	// the port defaults to the service port.
	hc := dns.HealthCheck
	if hc.Type != "none" || hc.Port != 53 || hc.Path != "/" || hc.ExpectStatus != (config.StatusRange{Min: 200, Max: 399}) ||
		hc.Interval.D() != 5*time.Second || hc.Timeout.D() != 2*time.Second || hc.Rise != 2 || hc.Fall != 3 {
		t.Errorf("dns health-check = %+v", hc)
	}
	if c.API.SocketMode != 0o660 || c.Metrics.Listen != "127.0.0.1:9469" || c.Log.Level != "info" {
		t.Errorf("api/metrics/log = %+v %+v %+v", c.API, c.Metrics, c.Log)
	}
}

func TestServiceDefaults(t *testing.T) {
	c := mustLoad(t, "testdata/good/03-services.toml").Config
	if len(c.Services) != 2 {
		t.Fatalf("services = %d", len(c.Services))
	}
	s := c.Services[0]
	if s.Protocol != "tcp" || s.HealthCheck.Type != "tcp" || s.HealthCheck.Port != 8443 || s.Backends[0].Weight != 100 {
		t.Errorf("service defaults: %+v", s)
	}
	all := c.Services[1]
	if all.Port != 0 || all.HealthCheck.Port != 9000 {
		t.Errorf("VIP-wide service: %+v", all)
	}
}

func TestParseName(t *testing.T) {
	_, err := config.Parse("inline.toml", []byte("[node]\nunderlay = [\"10.0.0.1\"]\nname = 5\n"))
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := errs[0].Error(), "inline.toml:3:1: node.name: expected a string, found an integer"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestByteOrderMark(t *testing.T) {
	src := "\xef\xbb\xbf[node]\nunderlay = [\"10.0.0.1\"]\nname = 5\n"
	_, err := config.Parse("bom.toml", []byte(src))
	if got, want := fmt.Sprint(err), "bom.toml:3:1: node.name: expected a string, found an integer"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	_, err = config.Parse("bom.toml", []byte("\xef\xbb\xbfname = 5\n"))
	if got, want := fmt.Sprint(err), "\nbom.toml:1:1: name: unknown key"; !strings.Contains(got, want) {
		t.Errorf("got %q, want it to contain %q", got, want)
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"\"\\", `f:1:2: syntax error: invalid escape in string '\\x00'`},
		{"a = 1\nb = \"x\\", `f:2:7: b: syntax error: invalid escape in string '\\x00'`},
		{"[node]\nname = \"n\"\nname = \"m\"\n", `f:3:1: node.name: syntax error: Key 'node.name' has already been defined.`},
		{"[node]\n[node]\n", `f:2:2: syntax error: Key 'node' has already been defined.`},
		{"a = [1,\n\n", `f:2:1: a: syntax error: unexpected EOF; expected value`},
		{"[node\nx=1", `f:1:6: syntax error: expected '.' or ']' to end table name, but got '\n' instead`},
		{"[node]\nname = \"n\nunderlay = []\n", `f:2:10: node.name: syntax error: strings cannot contain newlines`},
		{"\x00abc", `f:1:1: syntax error: files cannot contain NULL bytes; probably using UTF-16; TOML files must be UTF-8`},
	} {
		_, err := config.Parse("f", []byte(tc.src))
		var errs config.Errors
		if !errors.As(err, &errs) || len(errs) != 1 {
			t.Errorf("%q: %v, want one error", tc.src, err)
			continue
		}
		if got := errs[0].Error(); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}

// TestDocsCoverEveryKey keeps docs/configuration.md in step with the schema:
// every section is a heading and every key appears in a table row.
func TestDocsCoverEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			key := f.Tag.Get("toml")
			if key == "-" { // set by the daemon, not a key of the file
				continue
			}
			path := key
			if prefix != "" {
				path = prefix + "." + key
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			table := ft.Kind() == reflect.Struct && !strings.HasPrefix(ft.PkgPath(), "net/") &&
				ft != reflect.TypeFor[config.PeerASN]() && ft != reflect.TypeFor[config.PrefixFilter]() &&
				ft != reflect.TypeFor[config.StatusRange]() && ft != reflect.TypeFor[config.TunnelSource]()
			if table {
				if !strings.Contains(text, "`["+path+"]`") && !strings.Contains(text, "`[["+path+"]]`") {
					t.Errorf("docs: no heading for [%s]", path)
				}
				walk(path, ft)
				continue
			}
			if !strings.Contains(text, "| `"+key+"` |") {
				t.Errorf("docs: no table row for %s", path)
			}
		}
	}
	walk("", reflect.TypeFor[config.Config]())
}

func TestPoolVIPFamily(t *testing.T) {
	f := mustLoad(t, "testdata/good/04-vip-pool.toml")
	for i, want := range []string{"ipv6", "ipv4", "ipv6"} {
		s := &f.Services[i]
		if got := f.PoolVIPFamily(s); got != want {
			t.Errorf("services[%d] (%s): family %s, want %s", i, s.Name, got, want)
		}
	}
	web, edge := &f.Services[0], &f.Services[2]
	for _, c := range []struct {
		s    *config.Service
		addr string
		want bool
	}{
		{web, "fd00:250::7", true},
		{web, "fd00:251::7", true}, // any service pool
		{web, "10.250.0.7", false}, // wrong family
		{edge, "fd00:250::7", false},
		{edge, "fd00:251::7", true},
	} {
		if got := f.PoolVIPFits(c.s, netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("PoolVIPFits(%s, %s) = %v, want %v", c.s.Name, c.addr, got, c.want)
		}
	}
}
