package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/testutil"
)

// BenchmarkLoadScale loads the configuration bench/daemon.sh runs aird
// with (10,000 services of 100 backends each, written as addresses: about
// 16 MB) and reports config.Load's time against its floor measured in the
// same iterations: the TOML parser decoding the same bytes into a generic
// map, which Load cannot avoid. load/toml is what aird adds on top (its
// limits pass, schema decoding, defaults and validation).
func BenchmarkLoadScale(b *testing.B) {
	sc := testutil.LBScale{VIPs: 10000, PerVIP: 100, Pool: 2000, Seed: 1}
	path := filepath.Join(b.TempDir(), "aird.toml")
	body := "[node]\nname = \"bench\"\nunderlay = [\"fd00:100:1::1\"]\n\n" + sc.TOML(nil)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var tomlT, loadT time.Duration
	for b.Loop() {
		t0 := time.Now()
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		var raw map[string]any
		if _, err := toml.Decode(string(data), &raw); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		f, err := config.Load(path)
		if err != nil {
			b.Fatal(err)
		}
		if len(f.Services) != sc.VIPs || len(f.Services[sc.VIPs-1].Backends) != sc.PerVIP {
			b.Fatalf("loaded %d services", len(f.Services))
		}
		tomlT += t1.Sub(t0)
		loadT += time.Since(t1)
	}
	b.ReportMetric(float64(tomlT.Milliseconds())/float64(b.N), "toml-ms")
	b.ReportMetric(float64(loadT.Milliseconds())/float64(b.N), "load-ms")
	b.ReportMetric(float64(loadT)/float64(tomlT), "load/toml")
	b.ReportMetric(float64(len(body))/(1<<20), "file-MB")
}

// BenchmarkLoadScaleSplit loads the same 10,000 services split into 100
// included files through one config.Loader: the first load (every file
// parsed, in parallel), and a reload after one file changed (one service's
// port), against a reload of the single-file layout measured in the same
// iterations.
func BenchmarkLoadScaleSplit(b *testing.B) {
	sc := testutil.LBScale{VIPs: 10000, PerVIP: 100, Pool: 2000, Seed: 1}
	const files = 100
	dir := b.TempDir()
	head := "[node]\nname = \"bench\"\nunderlay = [\"fd00:100:1::1\"]\n\n"
	single := filepath.Join(dir, "single.toml")
	if err := os.WriteFile(single, []byte(head+sc.TOML(nil)), 0o600); err != nil {
		b.Fatal(err)
	}
	split := filepath.Join(dir, "aird.toml")
	if err := os.Mkdir(filepath.Join(dir, "services.d"), 0o755); err != nil {
		b.Fatal(err)
	}
	per := sc.VIPs / files
	part := func(k int) string { return filepath.Join(dir, "services.d", fmt.Sprintf("%03d.toml", k)) }
	for k := range files {
		if err := os.WriteFile(part(k), []byte(sc.ServicesTOML(nil, k*per, (k+1)*per)), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.WriteFile(split, []byte("include = [\"services.d/*.toml\"]\n"+head+sc.PoolTOML()), 0o600); err != nil {
		b.Fatal(err)
	}
	var firstT, reloadT, singleT time.Duration
	port := 80
	for b.Loop() {
		l := &config.Loader{}
		t0 := time.Now()
		if _, err := l.Load(split); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		port++
		body := strings.Replace(sc.ServicesTOML(nil, 0, per), "port = 80\n", fmt.Sprintf("port = %d\n", port), 1)
		if err := os.WriteFile(part(0), []byte(body), 0o600); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		f, err := l.Load(split)
		if err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		if len(f.Services) != sc.VIPs || f.Services[0].Port != port {
			b.Fatalf("loaded %d services, port %d", len(f.Services), f.Services[0].Port)
		}
		if _, err := config.Load(single); err != nil {
			b.Fatal(err)
		}
		firstT += t1.Sub(t0)
		reloadT += t3.Sub(t2)
		singleT += time.Since(t3)
	}
	n := float64(b.N)
	b.ReportMetric(float64(firstT.Milliseconds())/n, "first-load-ms")
	b.ReportMetric(float64(reloadT.Microseconds())/n/1000, "reload-one-file-ms")
	b.ReportMetric(float64(singleT.Milliseconds())/n, "single-file-load-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLoadScaleReload reloads the one-file layout of BenchmarkLoadScale
// through one config.Loader after one service changed (its port), which
// parses the chunk that holds it alone, against a load of the whole file
// by a new Loader measured in the same iterations.
func BenchmarkLoadScaleReload(b *testing.B) {
	sc := testutil.LBScale{VIPs: 10000, PerVIP: 100, Pool: 2000, Seed: 1}
	path := filepath.Join(b.TempDir(), "aird.toml")
	body := "[node]\nname = \"bench\"\nunderlay = [\"fd00:100:1::1\"]\n\n" + sc.TOML(nil)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		b.Fatal(err)
	}
	l := &config.Loader{}
	if _, err := l.Load(path); err != nil {
		b.Fatal(err)
	}
	l.Prepare()
	var reloadT, fullT time.Duration
	var parsed int64
	port := 80
	for b.Loop() {
		port++
		// service 5,000, in the middle of the file
		edited := strings.Replace(body, "name = \"s5000\"\nvip = \""+sc.VIP(5000).String()+"\"\nport = 80\n",
			fmt.Sprintf("name = \"s5000\"\nvip = %q\nport = %d\n", sc.VIP(5000), port), 1)
		if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		f, err := l.Load(path)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := new(config.Loader).Load(path); err != nil {
			b.Fatal(err)
		}
		fullT += time.Since(t1)
		reloadT += t1.Sub(t0)
		parsed += f.Parsed
		if f.Services[5000].Port != port {
			b.Fatalf("service 5000 has port %d", f.Services[5000].Port)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(reloadT.Microseconds())/n/1000, "reload-ms")
	b.ReportMetric(float64(fullT.Microseconds())/n/1000, "full-load-ms")
	b.ReportMetric(float64(reloadT)/float64(fullT), "reload/full")
	b.ReportMetric(float64(parsed)/n/1024, "reload-parsed-KiB")
	b.ReportMetric(0, "ns/op")
}
