package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/testutil"
)

// Peak RSS bounds of `aird --check-config`: files refused before they are
// parsed stay near the binary's own footprint (about 31 MiB); the costliest
// files within the limits we know of stay under the second bound
// (docs/configuration.md, "Limits").
const (
	refusedRSSBound = 64 << 20
	withinRSSBound  = 512 << 20
)

// runCheckConfig runs `aird --check-config path` with a deadline and
// returns its exit code, output and peak RSS in bytes (its own, measured
// through testutil.RunPeakRSS, not the test process's).
func runCheckConfig(t *testing.T, path string) (int, string, int64) {
	t.Helper()
	aird, _ := testutil.Binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	out, code, rss := testutil.RunPeakRSS(ctx, t, aird, "--check-config", path)
	t.Logf("exit %d after %v, peak RSS %.1f MiB", code, time.Since(start).Round(time.Millisecond), float64(rss)/(1<<20))
	return code, out, rss
}

func TestMain(m *testing.M) {
	testutil.ServePeakRSSLauncher()
	os.Exit(m.Run())
}

func TestCheckConfigRefusesHostileFiles(t *testing.T) {
	for _, h := range testutil.HostileConfigs() {
		t.Run(h.Name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "aird.toml")
			h.Make(t, path)
			code, out, rss := runCheckConfig(t, path)
			if code != 1 || !strings.Contains(out, path+":") || !strings.Contains(out, h.Want) {
				t.Errorf("exit %d, want 1 with %q:\n%.300s", code, h.Want, out)
			}
			if rss > refusedRSSBound {
				t.Errorf("peak RSS %d bytes, above the bound of %d", rss, refusedRSSBound)
			}
		})
	}
}

// TestCheckConfigAtTheLimits loads the costliest files within the limits:
// nested inline tables up to MaxItems, the most [[services]] with a
// backend each that MaxItems allows (16,383), and 10,000 services of 100
// backends each written as addresses (plain elements, MaxScalars).
func TestCheckConfigAtTheLimits(t *testing.T) {
	for _, c := range []struct {
		name, want string
		gen        func() string
	}{
		{"inline tables", "unknown key", func() string {
			var b strings.Builder
			for i := 0; (i+1)*8 <= config.MaxItems; i++ {
				fmt.Fprintf(&b, "k%d = %s1%s\n", i, strings.Repeat("{a=", 7), strings.Repeat("}", 7))
			}
			return b.String()
		}},
		{"16383 services", "configuration is valid", func() string {
			var b strings.Builder
			b.WriteString("[node]\nname = \"n1\"\nunderlay = [\"192.168.0.1\", \"fd00::1\"]\n" +
				"[[ipam.pools]]\nname = \"svc\"\nkind = \"service\"\nprefixes = [\"10.0.0.0/8\"]\n")
			for i := range 16383 {
				fmt.Fprintf(&b, "\n[[services]]\nname = \"svc-%d\"\nvip = \"10.1.%d.%d\"\nport = 443\nprotocol = \"tcp\"\n"+
					"allow-sources = [\"0.0.0.0/0\"]\nbackends = [{ address = \"fd00:1:%x::%x\", weight = 100 }]\n"+
					"health-check = { type = \"http\", path = \"/healthz\", interval = \"5s\" }\n", i, i>>8, i&255, i>>8, i&255)
			}
			return b.String()
		}},
		{"10000 services of 100 backends", "configuration is valid", func() string {
			sc := testutil.LBScale{VIPs: 10000, PerVIP: 100, Pool: 2000, Seed: 1}
			return "[node]\nname = \"n1\"\nunderlay = [\"fd00:100:1::1\"]\n" + sc.TOML(nil)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "aird.toml")
			if err := os.WriteFile(path, []byte(c.gen()), 0o600); err != nil {
				t.Fatal(err)
			}
			_, out, rss := runCheckConfig(t, path)
			if !strings.Contains(out, c.want) || strings.Contains(out, "nested") || strings.Contains(out, "key names and array elements") {
				t.Errorf("want %q and no limit error:\n%.500s", c.want, out)
			}
			if rss > withinRSSBound {
				t.Errorf("peak RSS %d bytes, above the bound of %d", rss, withinRSSBound)
			}
		})
	}
}
