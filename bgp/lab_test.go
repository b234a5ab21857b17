package bgp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// The privileged tests run the speaker in a network namespace of its own
// ("node"), and BIRD or FRR in others ("tor"), joined by veth pairs. A
// goroutine cannot be pinned to a namespace (GoBGP starts many, on any OS
// thread), so the test re-runs its own binary, restricted to itself, under
// `ip netns exec NODE`: the outer run builds the namespaces and starts the
// switches, the inner run (marked by innerEnv) drives the speaker and
// checks the switches' views through their control sockets, which are
// plain files. The outer run reports the inner run's output and verdict,
// and removes everything even on failure.

const (
	innerEnv = "AIRD_BGP_TEST_INNER" // the test name, in the inner run
	labEnv   = "AIRD_BGP_TEST_LAB"   // the lab, JSON, in the inner run
	// innerTimeout bounds one inner run; benchTimeoutInner one of the
	// benchmarks (AIRD_BENCH set), which run several receivers in turn.
	innerTimeout      = 3 * time.Minute
	benchTimeoutInner = 50 * time.Minute
	testTable         = 4242 // the speaker's FIB table in the node namespace
)

// labSpec describes the topology to the inner run.
type labSpec struct {
	Node     string    `json:"node"`
	StateDir string    `json:"state_dir"`
	Table    int       `json:"table"`
	Proto    int       `json:"proto"`
	Tors     []torSpec `json:"tors"`
}

// torSpec is one switch.
type torSpec struct {
	Name     string `json:"name"`
	NS       string `json:"ns"`
	Kind     string `json:"kind"` // "bird" or "frr"
	Ctl      string `json:"ctl"`  // BIRD control socket, or FRR vty directory
	PID      int    `json:"pid"`  // bird, or bgpd
	Log      string `json:"log"`  // bird's log (stderr)
	Addr     string `json:"addr"` // the switch's address on the link
	NodeAddr string `json:"node_addr"`
	Dev      string `json:"dev"`      // the switch's end of the link
	NodeDev  string `json:"node_dev"` // the node's end
	Index    int    `json:"index"`
}

func (t torSpec) bird() *testutil.BIRD { return testutil.BIRDClient(t.Ctl) }
func (t torSpec) frr() *testutil.FRR   { return testutil.FRRClient(t.Ctl) }

// lab is the outer run's view.
type lab struct{ spec labSpec }

// labTest runs scenario in the node namespace after setup built the
// switches. In the inner run it only runs scenario.
func labTest(t *testing.T, setup func(t *testing.T, l *lab), scenario func(t *testing.T, l labSpec)) {
	if os.Getenv(innerEnv) == t.Name() {
		var spec labSpec
		if err := json.Unmarshal([]byte(os.Getenv(labEnv)), &spec); err != nil {
			t.Fatalf("inner run: bad %s: %v", labEnv, err)
		}
		scenario(t, spec)
		return
	}
	testutil.RequirePrivileged(t)
	testutil.RequireCommand(t, "ip")
	l := &lab{spec: labSpec{
		Node:     testutil.NewNetns(t, "bgpn-"),
		StateDir: testutil.TempDir(t, "aird-bgp-state-"),
		Table:    testTable,
		Proto:    DefaultRouteProtocol,
	}}
	setup(t, l)
	l.runInner(t)
}

// link creates a switch namespace joined to the node by a veth pair, with
// fd00:100:N::1/64 on the switch side and fd00:100:N::2/64 on the node's.
func (l *lab) link(t *testing.T, name string) torSpec {
	i := len(l.spec.Tors) + 1
	ns := testutil.NewNetns(t, "bgpt-")
	nodeDev, torDev := testutil.UniqueName("vn"), testutil.UniqueName("vt")
	testutil.Veth(t, nodeDev, l.spec.Node, torDev, ns)
	tor := torSpec{
		Name:     name,
		NS:       ns,
		Index:    i,
		Addr:     fmt.Sprintf("fd00:100:%d::1", i),
		NodeAddr: fmt.Sprintf("fd00:100:%d::2", i),
		Dev:      torDev,
		NodeDev:  nodeDev,
	}
	testutil.Addr(t, ns, torDev, tor.Addr+"/64")
	testutil.Addr(t, l.spec.Node, nodeDev, tor.NodeAddr+"/64")
	return tor
}

// linkUnnumbered is link without global addresses: Addr and NodeAddr are
// the kernel's EUI-64 link-local addresses of the two ends (without
// zone), once usable.
func (l *lab) linkUnnumbered(t *testing.T, name string) torSpec {
	i := len(l.spec.Tors) + 1
	ns := testutil.NewNetns(t, "bgpt-")
	nodeDev, torDev := testutil.UniqueName("vn"), testutil.UniqueName("vt")
	testutil.Veth(t, nodeDev, l.spec.Node, torDev, ns)
	return torSpec{
		Name:     name,
		NS:       ns,
		Index:    i,
		Addr:     testutil.LinkLocal(t, ns, torDev).String(),
		NodeAddr: testutil.LinkLocal(t, l.spec.Node, nodeDev).String(),
		Dev:      torDev,
		NodeDev:  nodeDev,
	}
}

// addBIRD adds a BIRD switch; conf renders its configuration.
func (l *lab) addBIRD(t *testing.T, name string, conf func(tor torSpec) string) {
	l.startBIRD(t, l.link(t, name), conf)
}

// startBIRD runs BIRD as the switch on tor's link.
func (l *lab) startBIRD(t *testing.T, tor torSpec, conf func(tor torSpec) string) {
	b := testutil.StartBIRD(t, tor.NS, conf(tor))
	tor.Kind, tor.Ctl, tor.PID, tor.Log = "bird", b.Socket, b.Proc.PID(), b.Proc.Log
	l.spec.Tors = append(l.spec.Tors, tor)
}

// addFRR adds an FRR switch; conf renders bgpd's configuration.
func (l *lab) addFRR(t *testing.T, name string, conf func(tor torSpec) string) *testutil.FRR {
	return l.startFRR(t, l.link(t, name), conf)
}

// startFRR runs FRR (zebra, bgpd) as the switch on tor's link.
func (l *lab) startFRR(t *testing.T, tor torSpec, conf func(tor torSpec) string) *testutil.FRR {
	f := testutil.StartFRR(t, tor.NS, conf(tor))
	tor.Kind, tor.Ctl, tor.PID = "frr", f.Dir, f.BGPd.PID()
	l.spec.Tors = append(l.spec.Tors, tor)
	return f
}

// runInner re-runs this test in the node namespace and reports it.
func (l *lab) runInner(t *testing.T) {
	spec, err := json.Marshal(l.spec)
	if err != nil {
		t.Fatal(err)
	}
	timeout := innerTimeout
	if os.Getenv(benchEnv) != "" {
		timeout = benchTimeoutInner
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.spec.Node, os.Args[0],
		"-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1", "-test.timeout", timeout.String())
	cmd.Env = append(os.Environ(), innerEnv+"="+t.Name(), labEnv+"="+string(spec))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	// Prefix the inner output so that it is not read as this run's
	// test events.
	text := out.String()
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		b.WriteString("inner| ")
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	t.Logf("inner run in namespace %s (%s):\n%s", l.spec.Node, time.Since(start).Round(time.Millisecond), b.String())
	if ctx.Err() != nil {
		t.Fatalf("inner run timed out after %s", timeout)
	}
	if err != nil {
		t.Fatalf("inner run failed: %v", err)
	}
	if !strings.Contains(text, "--- PASS: "+t.Name()) {
		t.Fatalf("inner run did not report a pass")
	}
}
