package lab

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// BFD on every session of the rack: packets every 300 ms, a peer declared
// down after bfdMultiplier of them missed (3 s). A shorter detection time
// does not survive the shared 2-CPU machine: at load 20 a sleeping process
// wakes up to 0.93 s late, and an aird stalled longer than the ToRs'
// detection time is declared down by both; when it resumes it reads the
// ToRs' Down, GoBGP resets the sessions with a NOTIFICATION (FRR then drops
// the node's paths) and holds them idle for 30 s. A restarted aird opens
// its sessions only once BFD is up again, after the ToRs' sessions with
// the previous process expired (bgp.holdsForBFD): the longer detection
// time makes restarts no less clean, only 2-3 s longer. Only the test
// that measures BFD (a ToR lost) needs the fast detection: it sets tor2's
// multiplier to bfdFastMultiplier, so the nodes notice tor2 gone within
// 900 ms (the detection time is the sender's multiplier x the interval).
const (
	bfdIntervalMS     = 300
	bfdMultiplier     = 10
	bfdFastMultiplier = 3
)

// FRRTor is tor1: FRR (zebra, bgpd, bfdd) peering unnumbered with every
// node, ECMP over them, default route to them.
type FRRTor struct {
	NS  string
	Dir string // configs, vty sockets, logs: vtysh --vty_socket Dir
}

// BIRDTor is tor2: BIRD 2 peering with every node by address, ECMP (merge
// paths), default route to them, BFD.
type BIRDTor struct {
	NS     string
	Socket string // birdc -s Socket
}

// Vtysh runs a vtysh command on tor1.
func (f *FRRTor) Vtysh(cmd string) (string, error) {
	out, err := exec.Command("vtysh", "--vty_socket", f.Dir, "-c", cmd).CombinedOutput()
	return string(out), err
}

// Birdc runs a birdc command on tor2.
func (b *BIRDTor) Birdc(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", b.Socket}, args...)...).CombinedOutput()
	return string(out), err
}

func (l *Lab) startTors() error {
	if err := l.startFRR(); err != nil {
		return fmt.Errorf("tor1 (FRR): %w", err)
	}
	if err := l.startBIRD(); err != nil {
		return fmt.Errorf("tor2 (BIRD): %w", err)
	}
	return nil
}

// frrConf is tor1's bgpd.conf: an unnumbered session to each node's port,
// BFD (profile lab), ECMP over 8 paths, a default route sent to the nodes.
func (l *Lab) frrConf() string {
	var b strings.Builder
	fmt.Fprintf(&b, `frr defaults datacenter
hostname tor1
log stdout debugging
log timestamp precision 3
debug bgp bfd
route-map ALLOW permit 10
router bgp %d
 bgp router-id 10.255.100.1
 no bgp default ipv4-unicast
 bgp bestpath as-path multipath-relax
 timers bgp 3 9
`, asTor1)
	nodes := l.AllNodes()
	for _, n := range nodes {
		p := n.tor1Port()
		fmt.Fprintf(&b, " neighbor %[1]s interface remote-as external\n neighbor %[1]s timers connect 1\n"+
			" neighbor %[1]s bfd\n neighbor %[1]s bfd profile lab\n neighbor %[1]s bfd check-control-plane-failure\n", p)
	}
	for _, af := range []string{"ipv6", "ipv4"} {
		fmt.Fprintf(&b, " address-family %s unicast\n  maximum-paths 8\n", af)
		for _, n := range nodes {
			p := n.tor1Port()
			fmt.Fprintf(&b, "  neighbor %[1]s activate\n  neighbor %[1]s route-map ALLOW in\n"+
				"  neighbor %[1]s route-map ALLOW out\n  neighbor %[1]s default-originate\n", p)
		}
		b.WriteString(" exit-address-family\n")
	}
	return b.String()
}

const frrBFDConf = `log stdout debugging
log timestamp precision 3
debug bfd peer
bfd
 profile lab
  detect-multiplier %d
  receive-interval %d
  transmit-interval %d
 !
!
`

func (l *Lab) startFRR() error {
	f := l.Tor1
	u, err := user.Lookup("frr")
	if err != nil {
		return fmt.Errorf("no frr user (apt-get install frr): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return err
	}
	confs := map[string]string{
		"zebra": "hostname tor1\nlog stdout informational\n",
		"bfdd":  fmt.Sprintf(frrBFDConf, bfdMultiplier, bfdIntervalMS, bfdIntervalMS),
		"bgpd":  l.frrConf(),
	}
	for _, p := range []string{f.Dir} {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	for _, d := range []string{"zebra", "bfdd", "bgpd"} {
		conf := filepath.Join(f.Dir, d+".conf")
		if err := os.WriteFile(conf, []byte(confs[d]), 0o644); err != nil {
			return err
		}
		if err := os.Chown(conf, uid, gid); err != nil {
			return err
		}
		p, err := l.start("tor1-"+d, nil, append([]string{"ip"}, testutil.FRRDaemonArgs(f.NS, f.Dir, d, conf)...)...)
		if err != nil {
			return err
		}
		vty := filepath.Join(f.Dir, d+".vty")
		if !waitFor(10*time.Second, func() bool { _, err := os.Stat(vty); return err == nil || !p.Alive() }) || !p.Alive() {
			b, _ := os.ReadFile(p.Log)
			return fmt.Errorf("%s did not start:\n%s", d, b)
		}
	}
	return nil
}

// birdConf is tor2's configuration: a session to each node's tor2-side
// address with BFD (a BFD loss is a graceful restart, as for FRR), next
// hops (the nodes' loopbacks) resolved through static routes, ECMP into
// the kernel, a default route towards the client sent to the nodes.
func (l *Lab) birdConf(bfdMult int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `router id 10.255.100.2;
log stderr all;
timeformat log "%%F %%T.%%3f";
protocol device { scan time 1; }
protocol kernel kernel6 { ipv6 { import none; export all; }; merge paths on; }
protocol kernel kernel4 { ipv4 { import none; export all; }; merge paths on; }
protocol bfd { debug { states, events }; interface "*" { min rx interval %[1]d ms; min tx interval %[1]d ms; multiplier %[2]d; }; }
protocol static static4 { ipv4; route 0.0.0.0/0 via 10.1.2.2; }
protocol static static6 {
  ipv6;
  route ::/0 via fd00:c2::2;
`, bfdIntervalMS, bfdMult)
	for _, n := range l.AllNodes() {
		fmt.Fprintf(&b, "  route %s/128 via %s;\n", underlay(n.Index), nodeTor2Addr(n.Index))
	}
	fmt.Fprintf(&b, `}
template bgp node {
  local as %d;
  hold time 9; keepalive time 3; connect retry time 1; error wait time 1, 5;
  graceful restart on; bfd graceful;
  ipv6 { import all; export where net = ::/0; gateway recursive; igp table master6; };
  ipv4 { import all; export where net = 0.0.0.0/0; extended next hop on; gateway recursive; igp table master6; };
}
`, asTor2)
	for _, n := range l.AllNodes() {
		fmt.Fprintf(&b, "protocol bgp %s from node { neighbor %s as %d; }\n", n.Name, nodeTor2Addr(n.Index), n.ASN)
	}
	return b.String()
}

func (l *Lab) startBIRD() error {
	conf := filepath.Join(l.Dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(l.birdConf(bfdMultiplier)), 0o644); err != nil {
		return err
	}
	p, err := l.start("tor2-bird", nil, append([]string{"ip"}, testutil.BIRDArgs(l.Tor2.NS, conf, l.Tor2.Socket)...)...)
	if err != nil {
		return err
	}
	if !waitFor(10*time.Second, func() bool { _, err := l.Tor2.Birdc("show", "status"); return err == nil || !p.Alive() }) || !p.Alive() {
		b, _ := os.ReadFile(p.Log)
		return fmt.Errorf("bird did not start:\n%s", b)
	}
	return nil
}

// SetTor2BFDMultiplier reconfigures tor2's BFD multiplier (birdc
// configure: no BFD or BGP session restarts) and waits until BIRD applied
// it to the session with every node: the nodes then detect a lost tor2 in
// mult x 300 ms.
func (l *Lab) SetTor2BFDMultiplier(mult int) error {
	logPath := filepath.Join(l.Dir, "tor2-bird.log")
	before, err := os.ReadFile(logPath)
	if err != nil {
		return err
	}
	conf := filepath.Join(l.Dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(l.birdConf(mult)), 0o644); err != nil {
		return err
	}
	if out, err := l.Tor2.Birdc("configure"); err != nil || !strings.Contains(out, "Reconfigured") {
		return fmt.Errorf("birdc configure (BFD multiplier %d): %v\n%s", mult, err, out)
	}
	// BIRD logs "Session to X reconfigured" as it applies the new options
	// (protocol bfd debugs events).
	var missing []string
	if !waitFor(10*time.Second, func() bool {
		b, err := os.ReadFile(logPath)
		if err != nil || len(b) < len(before) {
			return false
		}
		missing = nil
		for _, n := range l.AllNodes() {
			if !strings.Contains(string(b[len(before):]), "Session to "+nodeTor2Addr(n.Index)+" reconfigured") {
				missing = append(missing, n.Name)
			}
		}
		return len(missing) == 0
	}) {
		return fmt.Errorf("tor2 did not apply BFD multiplier %d to its sessions with %v within 10s", mult, missing)
	}
	// A node takes the multiplier from tor2's next packet, due within an
	// interval: wait for two.
	time.Sleep(2 * bfdIntervalMS * time.Millisecond)
	return nil
}
