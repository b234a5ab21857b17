package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/testutil"
	"github.com/aird-net/aird/ipam"
)

const ipamTOML = `
[ipam]
pod-prefixes = ["fd00:10:0:1::/64", "10.10.1.0/24"]

[[ipam.pools]]
name = "pods"
kind = "pod"
prefixes = ["fd00:10::/48", "10.10.0.0/16"]

[[ipam.pools]]
name = "vms"
kind = "vm"
prefixes = ["fd00:20::/120"]
`

// ipamClient drives the allocator over the node's API socket.
type ipamClient struct {
	t *testing.T
	c *api.Client
}

func (n *node) ipam() ipamClient { return ipamClient{t: n.t, c: api.NewClient(n.socket)} }

func (c ipamClient) allocate(owner string, f ipam.Family) (ipam.Allocation, error) {
	var al ipam.Allocation
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.c.Do(ctx, "POST", "/v1/ipam/allocate", api.IPAMAllocate{Owner: owner, Family: f, Kind: ipam.KindPod}, &al)
	return al, err
}

func (c ipamClient) all() []ipam.Allocation {
	c.t.Helper()
	var as []ipam.Allocation
	if err := c.c.Do(context.Background(), "GET", "/v1/ipam/allocations", nil, &as); err != nil {
		c.t.Fatalf("list allocations: %v", err)
	}
	return as
}

// TestIPAMKillDuringAllocations kills aird with SIGKILL in the middle of a
// burst of allocations driven through the API, three times, and checks
// after each restart that every acknowledged allocation is still there with
// the same address, that no address is held twice, and that allocating
// again for the same owners returns the same addresses.
func TestIPAMKillDuringAllocations(t *testing.T) {
	n := newNode(t)
	// An address configured on the node is never handed out.
	taken := netip.MustParseAddr("fd00:10:0:1::1")
	testutil.Run(t, "ip", "-n", n.ns, "addr", "add", taken.String()+"/128", "dev", "lo")
	n.writeConfig(n.config("info", "uplink0") + ipamTOML)
	n.start()

	acked := map[string]ipam.Allocation{} // owner/family -> what the API answered
	var mu sync.Mutex
	next := 0
	for round := range 3 {
		n.burstThenKill(t, round, &next, acked, &mu)
		n.start()
		n.checkAllocations(t, acked, taken)
	}
	if len(acked) < 300 {
		t.Fatalf("only %d allocations acknowledged over 3 rounds; the burst did not run", len(acked))
	}

	out, errs, code := n.airctl("ipam", "pools", "-o", "json")
	var ps []ipam.PoolStatus
	if code != 0 || json.Unmarshal([]byte(out), &ps) != nil || len(ps) != 2 {
		t.Fatalf("airctl ipam pools: exit %d %s\n%s", code, errs, out)
	}
	if ps[0].Name != "pods" || ps[0].Prefixes[0] != netip.MustParsePrefix("fd00:10:0:1::/64") ||
		ps[0].Size.String() != "18446744073709551741" { // (2^64 - 129) + 254
		t.Fatalf("pods pool %+v: want this node's pod prefixes and their size", ps[0])
	}
	all := n.ipam().all()
	if got := ps[0].Used[ipam.IPv6] + ps[0].Used[ipam.IPv4]; got != len(all) {
		t.Fatalf("pool use %v, want %d allocations", ps[0].Used, len(all))
	}
	m := n.metrics()
	want := fmt.Sprintf(`aird_ipam_pool_allocated{family="ipv6",kind="pod",pool="pods"} %d`, ps[0].Used[ipam.IPv6])
	if !strings.Contains(m, want) || !strings.Contains(m, `aird_ipam_pool_size{kind="vm",pool="vms"} 255`) {
		t.Fatalf("metrics lack %q or the vms pool size:\n%s", want, grepLines(m, "aird_ipam"))
	}
	out, _, code = n.airctl("ipam", "allocations", "pods")
	if code != 0 || strings.Count(out, "\n") != len(all)+1 || !strings.Contains(out, "fd00:10:0:1::2") {
		t.Fatalf("airctl ipam allocations pods (exit %d):\n%s", code, out)
	}
}

// burstThenKill runs four API clients allocating for new owners until some
// allocations are acknowledged in this round, then kills aird with SIGKILL
// while they are still sending.
func (n *node) burstThenKill(t *testing.T, round int, next *int, acked map[string]ipam.Allocation, mu *sync.Mutex) {
	t.Helper()
	c := n.ipam()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	ackedThisRound := 0
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ { // bounded: the kill ends it much sooner
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				k := *next
				*next++
				mu.Unlock()
				fam := ipam.IPv6
				if k%3 == 0 {
					fam = ipam.IPv4
				}
				owner := fmt.Sprintf("cni/r%d-w%d-%d", round, w, k)
				al, err := c.allocate(owner, fam)
				if err != nil {
					return // aird is gone
				}
				mu.Lock()
				acked[owner+"/"+string(fam)] = al
				ackedThisRound++
				mu.Unlock()
			}
		}()
	}
	if !testutil.WaitFor(30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return ackedThisRound >= 100+37*round
	}) {
		t.Fatalf("round %d: only %d allocations acknowledged in 30s", round, ackedThisRound)
	}
	if err := syscall.Kill(n.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-n.exited
	var ee interface{ Sys() any }
	if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("aird exit: %v, want killed by SIGKILL", err)
	}
	n.cmd = nil
	close(stop)
	wg.Wait()
	t.Logf("round %d: %d allocations acknowledged before SIGKILL (%d in all)", round, ackedThisRound, len(acked))
}

// checkAllocations compares the restarted aird's allocations with what the
// API acknowledged.
func (n *node) checkAllocations(t *testing.T, acked map[string]ipam.Allocation, taken netip.Addr) {
	t.Helper()
	c := n.ipam()
	all := c.all()
	byAddr := map[netip.Addr]string{}
	byOwner := map[string]ipam.Allocation{}
	for _, al := range all {
		if prev, dup := byAddr[al.Addr]; dup {
			t.Fatalf("%s is held by both %s and %s", al.Addr, prev, al.Owner)
		}
		byAddr[al.Addr] = al.Owner
		byOwner[al.Owner+"/"+string(al.Family)] = al
		if al.Addr == taken {
			t.Fatalf("%s, configured on the node, was handed out to %s", taken, al.Owner)
		}
	}
	for key, want := range acked {
		got, ok := byOwner[key]
		if !ok || got.Addr != want.Addr {
			t.Fatalf("acknowledged %s -> %s lost after SIGKILL and restart (now %+v, present %v)", key, want.Addr, got, ok)
		}
		again, err := c.allocate(want.Owner, want.Family)
		if err != nil || again.Addr != want.Addr {
			t.Fatalf("allocating again for %s after restart: %v %v, want %s", key, again.Addr, err, want.Addr)
		}
	}
	t.Logf("after restart: %d allocations in the store, all %d acknowledged ones intact", len(all), len(acked))
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
