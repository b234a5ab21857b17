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
	"testing"
	"time"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/logging"
	"github.com/aird-net/aird/internal/testutil"
	"github.com/aird-net/aird/ipam"
	"github.com/aird-net/aird/lb"
)

// BenchmarkReloadOneService is the daemon's reload path from the files to
// the data plane's seam (config.Loader, the services delta, the IPAM VIP
// sync, the translation and lb.Manager.Update, over a data plane that
// records the change) for bench/daemon.sh's configuration, 10,000 services
// of 100 backends, one service's port moved per reload: split into 100
// included files ("split", the first file rewritten), and in one file
// ("one-file", rewritten whole). reload-ms is the reload's time, without
// writing the file. The maps themselves are bench/daemon.sh's part.
func BenchmarkReloadOneService(b *testing.B) {
	for _, layout := range []string{"split", "one-file"} {
		b.Run(layout, func(b *testing.B) { benchReloadOneService(b, layout == "split") })
	}
}

func benchReloadOneService(b *testing.B, split bool) {
	sc := testutil.LBScale{VIPs: 10000, PerVIP: 100, Pool: 2000, Seed: 1}
	const files = 100
	dir := b.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "services.d"), 0o755); err != nil {
		b.Fatal(err)
	}
	per := sc.VIPs / files
	part := func(k int) string { return filepath.Join(dir, "services.d", fmt.Sprintf("%03d.toml", k)) }
	write := func(path, body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	svcs := strings.Split(sc.ServicesTOML(nil, 0, sc.VIPs), "\n[[services]]")[1:] // one service each
	for i := range svcs {
		svcs[i] = "\n[[services]]" + svcs[i]
	}
	head := "[node]\nname = \"bench\"\nunderlay = [\"fd00:100:1::1\"]\n\n" + sc.PoolTOML()
	main := filepath.Join(dir, "aird.toml")
	body, changed := strings.Join(svcs[:per], ""), part(0)
	if split {
		for k := range files {
			write(part(k), strings.Join(svcs[k*per:(k+1)*per], ""))
		}
		write(main, "include = [\"services.d/*.toml\"]\n"+head)
	} else {
		body, changed = head+strings.Join(svcs, ""), main
		write(main, body)
	}
	time.Sleep(2100 * time.Millisecond) // old enough for their stat to be trusted
	loader := &config.Loader{}
	cur, err := loader.Load(main)
	if err != nil {
		b.Fatal(err)
	}
	loader.Prepare() // as the daemon does once it is ready
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := ipam.Open(ipam.Options{Path: filepath.Join(dir, "ipam.db"), Pools: ipamPools(cur.Config), NodeAddrs: func() ([]netip.Addr, error) { return nil, nil }})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	if err := syncServiceVIPs(a, cur.Config); err != nil {
		b.Fatal(err)
	}
	plane := &countingPlane{}
	m, err := lb.New(context.Background(), lb.Options{Logger: quiet, OnServing: func([]netip.Addr) {}, Dataplane: plane})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	lbc := &lbComponent{log: quiet, m: m, probes: lbProbes{log: quiet}}
	if err := lbc.apply(nil, cur.Config); err != nil {
		b.Fatal(err)
	}
	log, _ := logging.New(io.Discard, "warn", "text")
	d := &Daemon{log: log, ipam: &ipamComponent{log: quiet, alloc: a}, lb: lbc}
	d.comps = []component{d.ipam, d.lb}
	port := 80
	var parsed int64
	var took time.Duration // writing the file aside
	for b.Loop() {
		port = 161 - port // 80, 81, 80, ...
		write(changed, strings.Replace(body, "port = 80\n", fmt.Sprintf("port = %d\n", port), 1))
		t0 := time.Now()
		next, err := loader.Load(main)
		if err != nil {
			b.Fatal(err)
		}
		parsed += next.Parsed
		d.ipam.fillKnownVIPs(next.Config)
		sections, services := config.DiffFiles(cur, next)
		if err := d.applyAll(cur.Config, next.Config, change{sections: sections, services: &services}); err != nil {
			b.Fatal(err)
		}
		cur = next
		took += time.Since(t0)
	}
	if calls := plane.take(); len(calls) < 2 || len(calls[len(calls)-1].Upsert) != 1 {
		b.Fatalf("the reloads handed the data plane %d changes", len(calls))
	}
	b.ReportMetric(float64(parsed)/float64(b.N)/1024, "parsed-KiB/op")
	b.ReportMetric(float64(took.Microseconds())/float64(b.N)/1000, "reload-ms")
}

// BenchmarkReloadEveryService changes a backend's weight in every one of
// 10,000 services of 100 backends (one file) and applies it from the
// parsed configurations on, both ways the daemon can: "delta" (the
// services delta, the VIP sync of the changed owners, lb.Manager.Update)
// and "full" (the path of a reload that changes other sections too:
// syncServiceVIPs, lb.Manager.Apply), over a data plane that records the
// change (no tables are built), alternately in the same iterations.
func BenchmarkReloadEveryService(b *testing.B) {
	sc := testutil.LBScale{VIPs: 10000, PerVIP: 100, Pool: 2000, Seed: 1}
	head := "[node]\nname = \"bench\"\nunderlay = [\"fd00:100:1::1\"]\n\n"
	parse := func(weight func(i, j int) int) *config.File {
		c, err := config.Parse("aird.toml", []byte(head+sc.TOML(weight)))
		if err != nil {
			b.Fatal(err)
		}
		return &config.File{Path: "aird.toml", Config: c}
	}
	a := parse(nil)
	w := parse(func(i, j int) int { // bench/daemon.sh's weight reload
		if j == 0 {
			return 50
		}
		return 100
	})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var full, delta time.Duration
	n := 0
	for b.Loop() {
		for _, mode := range []string{"full", "delta"} {
			cur, next := *a.Config, *w.Config
			cur.Services, next.Services = slices.Clone(a.Services), slices.Clone(w.Services)
			al, err := ipam.Open(ipam.Options{Path: filepath.Join(b.TempDir(), "ipam.db"), Pools: ipamPools(&cur), NodeAddrs: func() ([]netip.Addr, error) { return nil, nil }})
			if err != nil {
				b.Fatal(err)
			}
			if err := syncServiceVIPs(al, &cur); err != nil {
				b.Fatal(err)
			}
			m, err := lb.New(context.Background(), lb.Options{Logger: quiet, OnServing: func([]netip.Addr) {}, Dataplane: &countingPlane{}})
			if err != nil {
				b.Fatal(err)
			}
			lbc := &lbComponent{log: quiet, m: m, probes: lbProbes{log: quiet}}
			if err := lbc.apply(nil, &cur); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			if mode == "full" {
				_ = config.Diff(&cur, &next)
				if err := syncServiceVIPs(al, &next); err != nil {
					b.Fatal(err)
				}
				if err := lbc.apply(&cur, &next); err != nil {
					b.Fatal(err)
				}
				full += time.Since(t0)
			} else {
				sections, d := config.DiffFiles(&config.File{Path: "aird.toml", Config: &cur}, &config.File{Path: "aird.toml", Config: &next})
				if len(d.Changed) != sc.VIPs {
					b.Fatalf("the delta names %d services, want %d", len(d.Changed), sc.VIPs)
				}
				if err := syncChangedVIPs(al, &cur, &next, &d); err != nil {
					b.Fatal(err)
				}
				if err := lbc.applyChange(&cur, &next, change{sections: sections, services: &d}); err != nil {
					b.Fatal(err)
				}
				delta += time.Since(t0)
			}
			m.Close()
			al.Close()
		}
		n++
	}
	b.ReportMetric(float64(full.Milliseconds())/float64(n), "full-ms")
	b.ReportMetric(float64(delta.Milliseconds())/float64(n), "delta-ms")
	b.ReportMetric(0, "ns/op")
}
