package config_test

import (
	"os"
	"path/filepath"
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
