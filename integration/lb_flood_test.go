package integration

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/aird-net/aird/internal/synflood"
	"github.com/aird-net/aird/internal/testutil"
)

// floodSources is where the spoofed SYNs claim to come from; the backends
// blackhole it, so their SYN-ACKs go nowhere.
const floodSources = "fd00:dead::/48"

// TestSYNFloodKeepsEstablished: while a bounded generator sends 1,000,000
// spoofed SYNs (random sources and ports) to the VIP, established TCP
// connections through the LB keep working: active ones keep echoing
// throughout, idle ones work after it, also after their backend was
// drained mid-flood (weight 0: the Maglev table sends every new flow
// elsewhere, so only conntrack keeps them). The LB's counters show the
// flood (ct_syn, ct_flood), and conntrack gained no entry from it.
//
// The whole test process runs on one CPU: on a veth the XDP program runs
// on the CPU that sent the frame, and the LB's conntrack is per CPU; a NIC
// keeps a flow on one CPU with RSS, this keeps the lab's flows on one.
func TestSYNFloodKeepsEstablished(t *testing.T) { floodKeepsEstablished(t, false) }

// TestACKFloodKeepsEstablished is TestSYNFloodKeepsEstablished with
// 1,000,000 spoofed bare ACKs of flows that never existed: each is a new
// flow that conntrack tracks (ct_insert) as a new entry, so the LB's share
// of the table fills and new entries replace each other (ct_evict) - and
// never an established connection's entry.
func TestACKFloodKeepsEstablished(t *testing.T) { floodKeepsEstablished(t, true) }

func floodKeepsEstablished(t *testing.T, ack bool) {
	pinProcessToOneCPU(t)
	l := newLBLabWith(t, lbLabOptions{
		wire: func(l *lbLab) {
			for _, ns := range l.backendNS {
				testutil.Run(t, "ip", "-n", ns, "-6", "route", "add", "blackhole", floodSources)
			}
		},
		lbKeys: "flood-threshold = 10000",
	})

	// Connections: two active and two idle ones to b1, two active to b2.
	type held struct {
		c   net.Conn
		r   *bufio.Reader
		who string
	}
	var active, idle []held
	want := map[string]int{"b1": 4, "b2": 2}
	for i := 0; i < 400 && (want["b1"] > 0 || want["b2"] > 0); i++ {
		c, r, who, err := l.connect(t)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if want[who] == 0 {
			c.Close()
			continue
		}
		want[who]--
		h := held{c, r, who}
		t.Cleanup(func() { c.Close() })
		if who == "b1" && want["b1"] < 2 {
			idle = append(idle, h)
		} else {
			active = append(active, h)
		}
	}
	if len(active) != 4 || len(idle) != 2 {
		t.Fatalf("could not hold 4 connections to b1 and 2 to b2 (active %d, idle %d)", len(active), len(idle))
	}
	for _, h := range append(append([]held(nil), active...), idle...) {
		if err := echo(h.c, h.r, "before the flood"); err != nil {
			t.Fatalf("echo to %s: %v", h.who, err)
		}
	}
	before := readLBCounters(t, l.lb)

	// The active connections echo every 20 ms while the flood runs.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	phase := 0 // 0: first half of the flood, 1: second half (after the drain)
	echoes := make([][2]int, len(active))
	errs := make([]error, len(active))
	for i, h := range active {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if err := echo(h.c, h.r, fmt.Sprintf("during the flood %d", n)); err != nil {
					errs[i] = err
					return
				}
				mu.Lock()
				echoes[i][phase]++
				mu.Unlock()
			}
		}()
	}

	// Half the flood, the drain of b1, the other half.
	const total = 1_000_000
	kind := map[bool]string{false: "SYNs", true: "ACKs"}[ack]
	sent := 0
	flood := func(seed uint64) {
		t.Helper()
		res := l.synFlood(t, total/2, seed, ack)
		sent += res.Sent
		t.Logf("flood: %d %s in %s (%.0f/s), %d retries", res.Sent, kind, res.Duration, float64(res.Sent)/res.Duration.Seconds(), res.Retries)
	}
	flood(1)
	l.setWeight(t, "fd00:2::2", 0)
	mu.Lock()
	phase = 1
	mu.Unlock()
	flood(2)
	close(stop)
	wg.Wait()
	if sent != total {
		t.Fatalf("the generator sent %d %s, want %d", sent, kind, total)
	}
	for i, h := range active {
		if errs[i] != nil {
			t.Errorf("active connection %d to %s broke during the flood: %v (%v echoes before)", i, h.who, errs[i], echoes[i])
		} else if echoes[i][0] == 0 || echoes[i][1] == 0 {
			t.Errorf("active connection %d to %s stalled: %v echoes before and after the drain", i, h.who, echoes[i])
		}
	}
	t.Logf("echoes per active connection (before, after the drain): %v", echoes)
	for i, h := range idle {
		if err := echo(h.c, h.r, "after the flood"); err != nil {
			t.Errorf("idle connection %d to %s broke: %v", i, h.who, err)
		}
	}

	// The counters show the flood; conntrack did not grow by it.
	after := readLBCounters(t, l.lb)
	d := func(name string) uint64 { return after.Events[name] - before.Events[name] }
	t.Logf("LB events during the flood: ct_syn %d, ct_flood %d, ct_insert %d, ct_evict %d, ct_full %d, ct_hit %d",
		d("ct_syn"), d("ct_flood"), d("ct_insert"), d("ct_evict"), d("ct_full"), d("ct_hit"))
	if d("ct_flood") == 0 {
		t.Error("ct_flood did not count the flood (lb.flood-threshold = 10000)")
	}
	if !ack {
		if d("ct_syn") < total {
			t.Errorf("ct_syn grew by %d, fewer than the %d spoofed SYNs", d("ct_syn"), total)
		}
		if d("ct_insert") > 1000 || d("ct_evict") != 0 {
			t.Errorf("the flood wrote conntrack: ct_insert +%d, ct_evict +%d", d("ct_insert"), d("ct_evict"))
		}
	} else {
		// Every spoofed ACK is a flow of its own: tracked as a new entry
		// (or, in a set of four established flows, not at all: ct_full).
		if d("ct_insert")+d("ct_full") < total || d("ct_syn") > 1000 {
			t.Errorf("ct_insert +%d, ct_full +%d, ct_syn +%d for %d spoofed ACKs", d("ct_insert"), d("ct_full"), d("ct_syn"), total)
		}
		if d("ct_evict") == 0 {
			t.Error("ct_evict +0: the flood never filled a set, so it did not try the established entries")
		}
	}
	m := regexp.MustCompile(`(?m)^aird_lb_events_total\{event="ct_flood"\} (\S+)$`).FindStringSubmatch(l.lb.metrics())
	if v, err := strconv.ParseFloat(valueOf(m), 64); err != nil || v < float64(d("ct_flood")) {
		t.Errorf("metric aird_lb_events_total{event=\"ct_flood\"} = %v (%v), want at least %d", valueOf(m), err, d("ct_flood"))
	}

	// New connections go to b2 only (b1 is drained), once the backends
	// have worked through the flood.
	l.waitHealthy(t, "fd00:2::2", "fd00:3::2")
	for i := range 10 {
		who, err := l.ask(t)
		if err != nil || who != "b2" {
			t.Fatalf("new connection %d after the drain: %q, %v (want b2)", i, who, err)
		}
	}
}

func valueOf(m []string) string {
	if len(m) < 2 {
		return ""
	}
	return m[1]
}

// synFlood sends n spoofed SYNs (or bare ACKs) from floodSources to the
// VIP's port 8080 out of the client's c0, addressed to the LB's l0.
func (l *lbLab) synFlood(t *testing.T, n int, seed uint64, ack bool) synflood.Result {
	t.Helper()
	mac := func(ns, dev string) net.HardwareAddr {
		var m net.HardwareAddr
		testutil.InNetns(t, ns, func() {
			link, err := netlink.LinkByName(dev)
			if err != nil {
				t.Fatal(err)
			}
			m = link.Attrs().HardwareAddr
		})
		return m
	}
	dst, src := mac(l.lbNS, "l0"), mac(l.client, "c0")
	var res synflood.Result
	var err error
	testutil.InNetns(t, l.client, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		res, err = synflood.Run(ctx, synflood.Options{Interface: "c0", DstMAC: dst, SrcMAC: src,
			Dst: netip.MustParseAddr(labVIP), DstPort: 8080, Sources: netip.MustParsePrefix(floodSources), Count: n, Seed: seed, ACK: ack})
	})
	if err != nil {
		t.Fatalf("flood: %v (sent %d)", err, res.Sent)
	}
	return res
}

// setWeight gives backend addr of service "web" weight w and reloads the
// LB's aird.
func (l *lbLab) setWeight(t *testing.T, addr string, w int) {
	t.Helper()
	b, err := os.ReadFile(l.lb.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf("{ address = %q }", addr)
	cfg := string(b)
	if !strings.Contains(cfg, old) {
		t.Fatalf("no backend %s in the LB's configuration", addr)
	}
	cfg = strings.Replace(cfg, old, fmt.Sprintf("{ address = %q, weight = %d }", addr, w), 1)
	l.lb.writeConfig(cfg)
	if _, errs, code := l.lb.airctl("reload"); code != 0 {
		t.Fatalf("reload with %s at weight %d: %s", addr, w, errs)
	}
}

// pinProcessToOneCPU puts every thread of the test process (and so every
// thread it starts) on the first CPU it may use, until the test ends.
func pinProcessToOneCPU(t *testing.T) {
	t.Helper()
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	var one unix.CPUSet
	for c := 0; c < 1024; c++ {
		if all.IsSet(c) {
			one.Set(c)
			break
		}
	}
	setAll := func(set *unix.CPUSet) error {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, task := range tasks {
			tid, err := strconv.Atoi(task.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("thread %d: %w", tid, err)
			}
		}
		return nil
	}
	if err := setAll(&one); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := setAll(&all); err != nil {
			t.Errorf("restore CPU affinity: %v", err)
		}
	})
}
