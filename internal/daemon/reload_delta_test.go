package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/logging"
	"github.com/aird-net/aird/ipam"
	"github.com/aird-net/aird/lb"
)

// countingPlane is an lb.Dataplane that records every change it is handed
// (the seam between the lb manager and the programmer of the maps).
type countingPlane struct {
	mu    sync.Mutex
	calls []lb.Change
}

func (p *countingPlane) Limits() lb.Limits {
	return lb.Limits{MaxVIPs: 10000, MaxBackends: 10000, VIPEntries: 30000, AllowEntries: 1000}
}
func (p *countingPlane) Adopt(*lb.IDs) (lb.Adopted, error) { return lb.Adopted{}, nil }
func (p *countingPlane) Program(ch lb.Change) (map[lb.ServiceKey]uint32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, ch)
	res := map[lb.ServiceKey]uint32{}
	for _, u := range ch.Upsert {
		res[u.Service.Key()] = uint32(len(u.Service.Backends))
	}
	return res, nil
}

func (p *countingPlane) take() []lb.Change {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.calls
	p.calls = nil
	return out
}

// countingVIPs counts what the VIP sync of a reload asks the allocator.
type countingVIPs struct {
	*ipam.Allocator
	lookups, holders int
	owners           []string
}

func (c *countingVIPs) Lookup(owner string) []ipam.Allocation {
	c.lookups++
	return c.Allocator.Lookup(owner)
}

func (c *countingVIPs) Holder(a netip.Addr) (ipam.Allocation, bool) {
	c.holders++
	return c.Allocator.Holder(a)
}

func (c *countingVIPs) SyncOwners(prefix string, owners []string, wants []ipam.Want) ([]ipam.Allocation, error) {
	c.owners = append(c.owners, owners...)
	return c.Allocator.SyncOwners(prefix, owners, wants)
}

const deltaMain = `include = ["services.d/*.toml"]
[node]
name = "t"
underlay = ["fd00:100:1::1"]
[[ipam.pools]]
name = "vips"
kind = "service"
prefixes = ["fd00:250::/96"]
`

// deltaService is service i of file f: an explicit VIP, or (every third)
// one from the pool.
func deltaService(f, i, port int) string {
	vip := fmt.Sprintf("vip = \"fd00:250::%x:%x\"\n", f+1, i+1)
	if i%3 == 0 {
		vip = ""
	}
	return fmt.Sprintf("[[services]]\nname = \"f%d-s%d\"\n%sport = %d\nhealth-check = { type = \"none\" }\nbackends = [\"fd00:b::%x\", \"fd00:b::%x\"]\n\n",
		f, i, vip, port, i+1, i+2)
}

// deltaRig is the ipam and lb components of a daemon over a counting data
// plane, and a configuration of 10 included files of 20 services.
type deltaRig struct {
	t      *testing.T
	d      *Daemon
	plane  *countingPlane
	alloc  *ipam.Allocator
	loader *config.Loader
	main   string
	cur    *config.File
}

func newDeltaRig(t *testing.T) *deltaRig {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "services.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &deltaRig{t: t, plane: &countingPlane{}, loader: &config.Loader{}, main: filepath.Join(dir, "aird.toml")}
	r.write(r.main, deltaMain)
	for f := range 10 {
		r.writeFile(f, nil)
	}
	log, err := logging.New(io.Discard, "warn", "text")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	r.cur = r.load()
	a, err := ipam.Open(ipam.Options{Path: filepath.Join(dir, "ipam.db"), Pools: ipamPools(r.cur.Config), NodeAddrs: func() ([]netip.Addr, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	r.alloc = a
	if err := syncServiceVIPs(a, r.cur.Config); err != nil {
		t.Fatal(err)
	}
	m, err := lb.New(context.Background(), lb.Options{Logger: quiet, OnServing: func([]netip.Addr) {}, Dataplane: r.plane})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	lbc := &lbComponent{log: quiet, m: m, probes: lbProbes{log: quiet}}
	if err := lbc.apply(nil, r.cur.Config); err != nil {
		t.Fatal(err)
	}
	r.d = &Daemon{log: log, ipam: &ipamComponent{log: quiet, alloc: a}, lb: lbc}
	r.d.comps = []component{r.d.ipam, r.d.lb}
	if n := len(r.plane.take()); n != 1 {
		t.Fatalf("the start programmed %d changes, want 1", n)
	}
	return r
}

func (r *deltaRig) write(path, body string) {
	r.t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

// writeFile writes file f; port, if set, gives a service's port.
func (r *deltaRig) writeFile(f int, port func(i int) int) {
	r.write(filepath.Join(filepath.Dir(r.main), "services.d", fmt.Sprintf("%02d.toml", f)), deltaFile(f, port))
}

// deltaFile is the body of file f of 20 services (port: as writeFile's).
func deltaFile(f int, port ...func(i int) int) string {
	var b strings.Builder
	for i := range 20 {
		p := 80
		if len(port) > 0 && port[0] != nil {
			p = port[0](i)
		}
		b.WriteString(deltaService(f, i, p))
	}
	return b.String()
}

func (r *deltaRig) load() *config.File {
	r.t.Helper()
	f, err := r.loader.Load(r.main)
	if err != nil {
		r.t.Fatal(err)
	}
	return f
}

// reload is the daemon's reload from the loaded file on.
func (r *deltaRig) reload() ([]string, error) {
	next := r.load()
	r.d.ipam.fillKnownVIPs(next.Config)
	sections, services := config.DiffFiles(r.cur, next)
	err := r.d.applyAll(r.cur.Config, next.Config, change{sections: sections, services: &services})
	if err == nil {
		r.cur = next
	}
	return sections, err
}

// TestReloadTouchesOnlyTheChange: a reload that moves one service to
// another port hands the data plane that service alone (one removal, one
// upsert), syncs that service's VIP owner alone, and a reload that changes
// nothing touches nothing; the result is what a start from the same files
// programs.
func TestReloadTouchesOnlyTheChange(t *testing.T) {
	r := newDeltaRig(t)
	vipsBefore := r.alloc.Allocations("")

	if sections, err := r.reload(); err != nil || len(sections) != 0 {
		t.Fatalf("an unchanged reload: %v, sections %v", err, sections)
	}
	if calls := r.plane.take(); len(calls) != 0 {
		t.Fatalf("an unchanged reload programmed %d changes", len(calls))
	}

	for _, svc := range []int{3, 4} { // a pool VIP, an explicit one
		r.writeFile(5, func(i int) int {
			if i == svc {
				return 81
			}
			return 80
		})
		if _, err := r.reload(); err != nil {
			t.Fatal(err)
		}
		calls := r.plane.take()
		name := fmt.Sprintf("f5-s%d", svc)
		if len(calls) != 1 || len(calls[0].Upsert) != 1 || calls[0].Upsert[0].Service.Name != name ||
			calls[0].Upsert[0].Service.Port != 81 || len(calls[0].Remove) != 1 || calls[0].Full {
			t.Fatalf("moving %s: the data plane was handed %+v", name, calls)
		}
		r.writeFile(5, nil)
		if _, err := r.reload(); err != nil {
			t.Fatal(err)
		}
		r.plane.take()
	}
	if after := r.alloc.Allocations(""); !slices.Equal(after, vipsBefore) {
		t.Fatalf("the VIPs moved:\n%v\n%v", vipsBefore, after)
	}

	// Removing a service alone releases its VIP alone.
	r.write(filepath.Join(filepath.Dir(r.main), "services.d", "03.toml"), strings.Join(strings.SplitAfter(deltaFile(3), "\n\n")[1:], ""))
	if _, err := r.reload(); err != nil {
		t.Fatal(err)
	}
	if calls := r.plane.take(); len(calls) != 1 || len(calls[0].Upsert) != 0 || len(calls[0].Remove) != 1 {
		t.Fatalf("removing one service handed the data plane %+v", calls)
	}
	for _, al := range vipsBefore {
		if l := r.alloc.Lookup(al.Owner); (al.Owner == "service/f3-s0") != (len(l) == 0) {
			t.Fatalf("after removing f3-s0, %s holds %+v", al.Owner, l)
		}
	}
	r.writeFile(3, nil)
	if _, err := r.reload(); err != nil {
		t.Fatal(err)
	}
	r.plane.take()

	// The VIP sync of such a change asks about that service alone.
	port7 := func(i int) int { return 80 + i%2*(i/19) } // f7-s19 to port 81
	r.writeFile(7, port7)
	next := r.load()
	r.d.ipam.fillKnownVIPs(next.Config)
	d := config.DiffServices(r.cur, next)
	cv := &countingVIPs{Allocator: r.alloc}
	if err := syncChangedVIPs(cv, r.cur.Config, next.Config, &d); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cv.owners, []string{"service/f7-s19"}) || cv.lookups != 1 || cv.holders != 1 {
		t.Fatalf("the sync of one changed service synced %v with %d lookups and %d holder queries", cv.owners, cv.lookups, cv.holders)
	}

	// What the reloads left is what a start programs.
	r.writeFile(5, func(i int) int { return 80 + i })
	if _, err := r.reload(); err != nil {
		t.Fatal(err)
	}
	fresh := newDeltaRig(t)
	fresh.writeFile(5, func(i int) int { return 80 + i })
	fresh.writeFile(7, port7)
	fresh.cur = fresh.load()
	got, _ := r.d.lb.m.Services(lb.ServiceQuery{Backends: true})
	m2, _ := lb.New(context.Background(), lb.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), OnServing: func([]netip.Addr) {}})
	defer m2.Close()
	fillVIPsFrom(r.cur.Config, fresh.cur.Config)
	if err := m2.Apply(fresh.d.lb.conv.config(fresh.cur.Config)); err != nil {
		t.Fatal(err)
	}
	want, _ := m2.Services(lb.ServiceQuery{Backends: true})
	if len(got.Services) != len(want.Services) {
		t.Fatalf("after reloads %d services, a start %d", len(got.Services), len(want.Services))
	}
	for i := range got.Services {
		if g, w := fmt.Sprint(got.Services[i]), fmt.Sprint(want.Services[i]); g != w {
			t.Fatalf("after reloads %s, a start %s", g, w)
		}
	}
}

// fillVIPsFrom gives the services of to the VIPs of the same names in
// from (a start elsewhere would allocate the same ones).
func fillVIPsFrom(from, to *config.Config) {
	vips := map[string]config.Service{}
	for _, s := range from.Services {
		vips[s.Name] = s
	}
	for i := range to.Services {
		s := &to.Services[i]
		s.VIP, s.VIPAllocated = vips[s.Name].VIP, vips[s.Name].VIPAllocated
	}
}

// TestReloadHandsOnASharedVIP: services on other ports share an explicit
// VIP, held by the first to name it; when a reload removes the holder, a
// service that stays takes the VIP over, though the reload changes only
// the holder.
func TestReloadHandsOnASharedVIP(t *testing.T) {
	r := newDeltaRig(t)
	shared := func(names ...string) string {
		var b strings.Builder
		for i, n := range names {
			fmt.Fprintf(&b, "[[services]]\nname = %q\nvip = \"fd00:250::ff:1\"\nport = %d\nhealth-check = { type = \"none\" }\nbackends = [\"fd00:b::1\"]\n\n", n, 80+i)
		}
		return b.String()
	}
	path := filepath.Join(filepath.Dir(r.main), "services.d", "10.toml")
	r.write(path, shared("first", "second"))
	if _, err := r.reload(); err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("fd00:250::ff:1")
	if h, ok := r.alloc.Holder(vip); !ok || h.Owner != "service/first" {
		t.Fatalf("the shared VIP is held by %+v, want service/first", h)
	}
	r.write(path, strings.Replace(shared("second"), "port = 80", "port = 81", 1)) // first removed
	if _, err := r.reload(); err != nil {
		t.Fatal(err)
	}
	if h, ok := r.alloc.Holder(vip); !ok || h.Owner != "service/second" || !h.Reserved {
		t.Fatalf("after the holder left, the VIP is held by %+v, want service/second", h)
	}
	if l := r.alloc.Lookup("service/first"); len(l) != 0 {
		t.Fatalf("the removed service still holds %+v", l)
	}
}
