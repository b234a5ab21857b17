package lab

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
)

// Counters is a snapshot of named counters: a node's data-plane events
// and drops, or a namespace's TCP statistics.
type Counters map[string]uint64

// Sub returns c - before for the counters that changed; a counter lower
// than before started again from zero (a downgrade that replaced its map,
// TestRackDowngrade): its value is what it counted since.
func (c Counters) Sub(before Counters) Counters {
	d := Counters{}
	for k, v := range c {
		switch {
		case v < before[k]:
			d[k] = v
		case v != before[k]:
			d[k] = v - before[k]
		}
	}
	return d
}

func (c Counters) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, c[k])
	}
	return strings.Join(parts, " ")
}

// DataplaneCounters reads the node's pinned per-CPU event and drop
// counters (pipeline_stats, router_stats) summed over CPUs, as "lb.NAME",
// "drop.NAME" and "router.NAME". They are read from the pins, so they do
// not depend on the node's aird running (a restart keeps them). A node
// running a build from before pipeline_stats (TestRackUpgrade) has its
// events and drops in lb_stats and drop_stats: those are read instead.
func (n *Node) DataplaneCounters() (Counters, error) {
	out := Counters{}
	older := []counterPin{
		{bpf.MapEventStatsV1, "lb.", int(bpf.DatapathLbStatLB_STAT_MAX), func(i uint32) string { return bpf.DatapathLbStat(i).String() }},
		{bpf.MapDropStatsV1, "drop.", int(bpf.DatapathDropReasonDROP_MAX), func(i uint32) string { return bpf.DatapathDropReason(i).String() }},
	}
	pm, err := ebpf.LoadPinnedMap(filepath.Join(n.pinPath(), "maps", bpf.MapStats), &ebpf.LoadPinOptions{ReadOnly: true})
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := n.readCounterPins(out, older); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("%s: counters: %w", n.Name, err)
	default:
		pc, err := bpf.SumPipelineCounters(pm)
		pm.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: counters: %w", n.Name, err)
		}
		for _, s := range bpf.LBStats() {
			out["lb."+s.String()] = pc.Events[s]
		}
		for _, r := range bpf.DropReasons() {
			out["drop."+r.String()] = pc.Drops[r]
		}
	}
	err = n.readCounterPins(out, []counterPin{
		{bpf.DatapathMapRouterStats, "router.", int(bpf.DatapathRouterStatROUTER_STAT_MAX), func(i uint32) string { return bpf.DatapathRouterStat(i).String() }},
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// counterPin is a pinned per-CPU array of uint64 counters, one per enum
// value below max, read as prefix + name(i).
type counterPin struct {
	pin, prefix string
	max         int
	name        func(i uint32) string
}

// readCounterPins reads the pinned counter maps ms into out.
func (n *Node) readCounterPins(out Counters, ms []counterPin) error {
	for _, m := range ms {
		pm, err := ebpf.LoadPinnedMap(filepath.Join(n.pinPath(), "maps", m.pin), &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			return fmt.Errorf("%s: counters: %w", n.Name, err)
		}
		var perCPU []uint64
		for i := uint32(0); i < uint32(m.max); i++ {
			if err := pm.Lookup(i, &perCPU); err != nil {
				pm.Close()
				return fmt.Errorf("%s: counters: %s[%d]: %w", n.Name, m.pin, i, err)
			}
			var sum uint64
			for _, v := range perCPU {
				sum += v
			}
			out[m.prefix+m.name(i)] = sum
		}
		pm.Close()
	}
	return nil
}

// TCPCounters reads the client namespace's TCP statistics (nstat's
// TcpRetransSegs, TcpExtTCPSynRetrans, TcpExtTCPTimeouts, ...): every TCP
// counter of /proc/net/snmp and /proc/net/netstat, as "Tcp.NAME" and
// "TcpExt.NAME".
func (l *Lab) TCPCounters() (Counters, error) {
	out := Counters{}
	err := inNetns(l.Client, func() error {
		// thread-self: the namespace of this (locked) thread, not the
		// process's.
		for _, f := range []string{"/proc/thread-self/net/snmp", "/proc/thread-self/net/netstat"} {
			if err := readSNMP(f, out, "Tcp", "TcpExt"); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// kernelDrops are the counters of a namespace's kernel that count a packet
// it discarded or could not route, or a TCP connection it refused to
// queue: where a packet the data plane passed on can still be lost.
var kernelDrops = map[string]bool{
	"Ip.InDiscards": true, "Ip.OutDiscards": true, "Ip.InNoRoutes": true, "Ip.OutNoRoutes": true,
	"Ip.InHdrErrors": true, "Ip.InAddrErrors": true,
	"Ip6InDiscards": true, "Ip6OutDiscards": true, "Ip6InNoRoutes": true, "Ip6OutNoRoutes": true,
	"Ip6InHdrErrors": true, "Ip6InAddrErrors": true, "Icmp6OutDestUnreachs": true, "Icmp.OutDestUnreachs": true,
	// A packet whose hop limit ran out (a routing loop, e.g. a VIP's
	// packet passed to a node's kernel, which routes it back to a ToR).
	"Icmp6OutTimeExcds": true, "Icmp.OutTimeExcds": true,
	"TcpExt.ListenDrops": true, "TcpExt.ListenOverflows": true, "TcpExt.TCPBacklogDrop": true,
	"TcpExt.TCPReqQFullDrop": true, "TcpExt.TCPReqQFullDoCookies": true, "TcpExt.TCPSynRetrans": true,
}

// KernelDrops reads, in every namespace of the lab, the kernel's drop
// counters (kernelDrops, as "NS:NAME") and each link's dropped and error
// counts ("NS:DEV.rx_dropped", ... and the veth driver's own drop and error
// counters from ethtool -S), and the host's softnet drops and squeezes
// (/proc/net/softnet_stat: a CPU's backlog full, NAPI out of budget).
func (l *Lab) KernelDrops() (Counters, error) {
	out := Counters{}
	l.mu.Lock()
	nss := append([]string(nil), l.state.Namespaces...)
	l.mu.Unlock()
	for _, ns := range nss {
		c := Counters{}
		err := inNetns(ns, func() error {
			for _, f := range []string{"/proc/thread-self/net/snmp", "/proc/thread-self/net/netstat"} {
				if err := readSNMP(f, c, "Ip", "Icmp", "TcpExt"); err != nil {
					return err
				}
			}
			return readSNMP6("/proc/thread-self/net/snmp6", c)
		})
		if err != nil {
			return nil, fmt.Errorf("kernel counters in %s: %w", ns, err)
		}
		for k, v := range c {
			if kernelDrops[k] {
				out[ns+":"+k] = v
			}
		}
		if err := linkDrops(ns, out); err != nil {
			return nil, err
		}
	}
	if err := softnetDrops(out); err != nil {
		return nil, err
	}
	return out, nil
}

// linkDrops adds the dropped and error counts of every link of ns.
func linkDrops(ns string, out Counters) error {
	j, err := run("ip", "-n", ns, "-s", "-j", "link", "show")
	if err != nil {
		return err
	}
	var links []struct {
		Name  string `json:"ifname"`
		Stats struct {
			RX struct{ Errors, Dropped uint64 } `json:"rx"`
			TX struct{ Errors, Dropped uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(j), &links); err != nil {
		return fmt.Errorf("ip -s -j link in %s: %w", ns, err)
	}
	for _, ln := range links {
		p := ns + ":" + ln.Name + "."
		out[p+"rx_dropped"], out[p+"rx_errors"] = ln.Stats.RX.Dropped, ln.Stats.RX.Errors
		out[p+"tx_dropped"], out[p+"tx_errors"] = ln.Stats.TX.Dropped, ln.Stats.TX.Errors
		if ln.Name == "lo" {
			continue
		}
		// The veth driver counts XDP and ring drops of its own.
		st, err := run("nsenter", "--net=/run/netns/"+ns, "ethtool", "-S", ln.Name)
		if err != nil {
			continue // not every driver has statistics
		}
		for _, line := range strings.Split(st, "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok || !(strings.Contains(k, "drop") || strings.Contains(k, "err")) {
				continue
			}
			if x, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
				out[p+k] = x
			}
		}
	}
	return nil
}

// softnetDrops adds the host's /proc/net/softnet_stat drops (a CPU's
// input backlog full) and time squeezes (NAPI ran out of budget or time),
// summed over CPUs.
func softnetDrops(out Counters) error {
	b, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		d, _ := strconv.ParseUint(f[1], 16, 64)
		sq, _ := strconv.ParseUint(f[2], 16, 64)
		out["softnet.dropped"] += d
		out["softnet.time_squeeze"] += sq
	}
	return nil
}

// readSNMP adds the counters of groups from an snmp-format file (a
// header line of names, then a line of values, per group) to out as
// "GROUP.NAME".
func readSNMP(path string, out Counters, groups ...string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		group, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || !slices.Contains(groups, group) {
			names = nil
			continue
		}
		fields := strings.Fields(rest)
		if names == nil {
			names = fields
			continue
		}
		for i, v := range fields {
			if x, err := strconv.ParseUint(v, 10, 64); err == nil && i < len(names) {
				out[group+"."+names[i]] = x
			}
		}
		names = nil
	}
	return sc.Err()
}

// readSNMP6 adds the counters of an snmp6 file (NAME VALUE lines).
func readSNMP6(path string, out Counters) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if x, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[f[0]] = x
		}
	}
	return nil
}

// Snapshot is what the lab counted at one moment: each node's data plane
// (DataplaneCounters), the client's TCP (TCPCounters) and every
// namespace's kernel drops (KernelDrops).
type Snapshot struct {
	Nodes  map[string]Counters
	Client Counters
	Kernel Counters
}

// snapshot reads a Snapshot.
func (l *Lab) snapshot() (Snapshot, error) {
	s := Snapshot{Nodes: map[string]Counters{}}
	var err error
	if s.Client, err = l.TCPCounters(); err != nil {
		return s, err
	}
	if s.Kernel, err = l.KernelDrops(); err != nil {
		return s, err
	}
	for _, n := range l.AllNodes() {
		if s.Nodes[n.Name], err = n.DataplaneCounters(); err != nil {
			return s, err
		}
	}
	return s, nil
}

// report logs what changed since before - the client's SYNs sent again,
// each node's data-plane events and drops, the kernels' drops - and
// returns the packets the nodes' data plane dropped and those the kernels
// dropped (not counting the unreachables a node's kernel sends for the
// ToRs' BFD packets while its aird is away).
func (s Snapshot) report(logf func(string, ...any), before Snapshot) (drops, kernel uint64) {
	c := s.Client.Sub(before.Client)
	logf("client: %d SYNs sent again (TcpExtTCPSynRetrans), %d segments (TcpRetransSegs)", c["TcpExt.TCPSynRetrans"], c["Tcp.RetransSegs"])
	names := make([]string, 0, len(s.Nodes))
	for n := range s.Nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d := s.Nodes[n].Sub(before.Nodes[n])
		for k, v := range d {
			if strings.HasPrefix(k, "drop.") {
				drops += v
			}
		}
		logf("%s's data plane: %s", n, d)
	}
	k := s.Kernel.Sub(before.Kernel)
	for name, v := range k {
		// SYNs sent again are the client's (above); squeezes are NAPI
		// yielding, not drops; unreachables answer BFD packets.
		if !strings.HasSuffix(name, "TCPSynRetrans") && !strings.HasSuffix(name, "OutDestUnreachs") && name != "softnet.time_squeeze" {
			kernel += v
		}
	}
	logf("kernels: %s", k)
	return drops, kernel
}
