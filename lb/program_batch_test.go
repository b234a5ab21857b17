package lb

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/config"
)

// manyServices returns n services on distinct VIPs, each with 3 of 5
// backends, so tables differ between services.
func manyServices(n int) []config.Service {
	out := make([]config.Service, n)
	for i := range out {
		s := config.Service{Name: fmt.Sprintf("s%d", i), VIP: netip.AddrFrom16([16]byte{0xfd, 0, 3, 0, 14: byte(i >> 8), 15: byte(i)}),
			Port: 80, Protocol: "tcp"}
		for j := range 3 {
			b := fmt.Sprintf("fd00:2::%d", 1+(i+j)%5)
			s.Backends = append(s.Backends, config.Backend{Address: netip.MustParseAddr(b), Weight: 100})
		}
		out[i] = s
	}
	return out
}

// More services than one batch: every table the kernel holds is the one
// the programmer built, both after the first Sync and after a restart
// (a new programmer adopting the maps re-installs them all in batches).
func TestProgrammerInstallsTablesInBatches(t *testing.T) {
	maps := loadMaps(t)
	services := manyServices(2*bpf.TableBatch + 7)
	for round, name := range []string{"first start", "restart"} {
		p, err := NewProgrammer(maps, testTableSize)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Sync(services, all); err != nil {
			t.Fatalf("%s: sync: %v", name, err)
		}
		for _, s := range services {
			want := p.Table(s.VIP, s.Protocol, s.Port)
			if len(want) != testTableSize || len(shares(want)) != 3 {
				t.Fatalf("%s: %s: table of %d slots over %d backends, want %d over 3", name, s.Name, len(want), len(shares(want)), testTableSize)
			}
			v, ok := vipEntry(t, maps, s.VIP.String(), 6, 80)
			if !ok {
				t.Fatalf("%s: %s: no vips entry", name, s.Name)
			}
			if got := kernelTable(t, maps, v.VipId); !slices.Equal(got, want) {
				t.Fatalf("%s: %s: the kernel's table differs from the built one", name, s.Name)
			}
		}
		t.Logf("round %d (%s): %d services, tables match", round, name, len(services))
	}
}

// BenchmarkReinstallTables compares re-installing every Maglev table after
// a restart one map-in-map update at a time (each waits for an RCU grace
// period) with SetTables' batches, in the same run.
func BenchmarkReinstallTables(b *testing.B) {
	for _, n := range []int{256, 1024} {
		tables := map[uint32][]uint32{}
		for i := range n {
			tbl := make([]uint32, testTableSize)
			for j := range tbl {
				tbl[j] = uint32(1 + (i+j)%5)
			}
			tables[uint32(i)] = tbl
		}
		b.Run(fmt.Sprintf("one-by-one/%d", n), func(b *testing.B) {
			l := benchLB(b)
			for b.Loop() {
				for id, tbl := range tables {
					if err := l.SetTable(id, tbl); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run(fmt.Sprintf("batched/%d", n), func(b *testing.B) {
			l := benchLB(b)
			for b.Loop() {
				if err := l.SetTables(tables); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchLB(b *testing.B) *bpf.LB {
	b.Helper()
	objs, err := bpf.LoadObjects(bpf.Config{MaglevTableSize: testTableSize, ConntrackSize: 4096}, nil)
	if err != nil {
		b.Skipf("load datapath (needs root): %v", err)
	}
	b.Cleanup(func() { objs.Close() })
	return bpf.NewLB(objs.LB, testTableSize)
}

// An id handed out again starts with zero counters, not its last owner's.
func TestProgrammerResetsCountersOfNewIDs(t *testing.T) {
	maps := loadMaps(t)
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	stale := make([]bpf.DatapathCounter, ncpu)
	stale[0] = bpf.DatapathCounter{Packets: 7, Bytes: 700}
	for id := uint32(0); id < 4; id++ { // what an earlier owner left behind
		if err := maps.VipStats.Put(id, stale); err != nil {
			t.Fatal(err)
		}
		if err := maps.BackendStats.Put(id, stale); err != nil {
			t.Fatal(err)
		}
	}
	p, err := NewProgrammer(maps, testTableSize)
	if err != nil {
		t.Fatal(err)
	}
	s := svc("fd00:2::1")
	if err := p.Sync([]config.Service{s}, all); err != nil {
		t.Fatal(err)
	}
	v, _ := vipEntry(t, maps, s.VIP.String(), 6, uint16(s.Port))
	for _, c := range []struct {
		m  *ebpf.Map
		id uint32
	}{{maps.VipStats, v.VipId}, {maps.BackendStats, p.BackendID(s.Backends[0].Address)}} {
		var got []bpf.DatapathCounter
		if err := c.m.Lookup(c.id, &got); err != nil {
			t.Fatal(err)
		}
		for cpu, g := range got {
			if g != (bpf.DatapathCounter{}) {
				t.Fatalf("%s id %d CPU %d starts at %+v, want zero", c.m, c.id, cpu, g)
			}
		}
	}
}
