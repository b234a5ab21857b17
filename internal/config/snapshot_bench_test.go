package config_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/testutil"
)

// BenchmarkLoadSnapshotScale loads the configuration of bench/daemon.sh
// (10,000 services of 100 backends, 16 MB) from its snapshot, as a
// restart with the file unchanged does, and by parsing it (config.Load),
// in the same iterations: snap/load is the ratio.
func BenchmarkLoadSnapshotScale(b *testing.B) {
	sc := testutil.LBScale{VIPs: 10000, PerVIP: 100, Pool: 2000, Seed: 1}
	path := filepath.Join(b.TempDir(), "aird.toml")
	body := "[node]\nname = \"bench\"\nunderlay = [\"fd00:100:1::1\"]\n\n" + sc.TOML(nil)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := config.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	snap, err := config.EncodeSnapshot(f, "bench")
	if err != nil || snap == nil {
		b.Fatalf("no snapshot: %v", err)
	}
	var snapT, loadT time.Duration
	for b.Loop() {
		t0 := time.Now()
		g, hit, err := new(config.Loader).LoadSnapshot(path, snap, "bench")
		if err != nil || !hit || len(g.Services) != sc.VIPs {
			b.Fatalf("snapshot not used: %v", err)
		}
		t1 := time.Now()
		if _, err := config.Load(path); err != nil {
			b.Fatal(err)
		}
		snapT += t1.Sub(t0)
		loadT += time.Since(t1)
	}
	b.ReportMetric(float64(snapT.Milliseconds())/float64(b.N), "snap-ms")
	b.ReportMetric(float64(loadT.Milliseconds())/float64(b.N), "load-ms")
	b.ReportMetric(float64(snapT)/float64(loadT), "snap/load")
	b.ReportMetric(float64(len(snap))/(1<<20), "snap-MB")
}
