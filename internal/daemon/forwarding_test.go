package daemon

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSysctls builds root/{ipv4,ipv6}/conf/dev with the given values.
func fakeSysctls(t *testing.T, dev, v4, v6, ra string) string {
	t.Helper()
	root := t.TempDir()
	for f, v := range map[string]string{"ipv4/conf/" + dev + "/forwarding": v4, "ipv6/conf/" + dev + "/forwarding": v6, "ipv6/conf/" + dev + "/accept_ra": ra} {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func sysctls(t *testing.T, root, dev string) string {
	t.Helper()
	var out []string
	for _, f := range []string{"ipv4/conf/" + dev + "/forwarding", "ipv6/conf/" + dev + "/forwarding", "ipv6/conf/" + dev + "/accept_ra"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSpace(string(b)))
	}
	return strings.Join(out, " ")
}

func TestForwarding(t *testing.T) {
	for _, tc := range []struct {
		name, mode, v4, v6, ra string
		want, wantLog          string
	}{
		{"enable turns both on and keeps RAs", "enable", "0", "0", "1", "1 1 2", "accept_ra 1 -> 2"},
		{"enable leaves accept_ra 0 alone", "enable", "0", "0", "0", "1 1 0", "forwarding enabled"},
		{"already on: nothing written", "enable", "1", "1", "1", "1 1 1", ""},
		{"keep writes nothing and warns", "keep", "0", "1", "1", "0 1 1", "forwarding is off on an uplink"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeSysctls(t, "up0", tc.v4, tc.v6, tc.ra)
			var log bytes.Buffer
			f := forwarding{log: slog.New(slog.NewTextHandler(&log, nil)), root: root}
			if err := f.apply(tc.mode, []string{"up0"}); err != nil {
				t.Fatal(err)
			}
			if got := sysctls(t, root, "up0"); got != tc.want {
				t.Errorf("sysctls %q, want %q", got, tc.want)
			}
			if tc.wantLog == "" && log.Len() != 0 || !strings.Contains(log.String(), tc.wantLog) {
				t.Errorf("log %q, want %q", log.String(), tc.wantLog)
			}
		})
	}
	t.Run("a missing interface is an error naming the sysctl", func(t *testing.T) {
		f := forwarding{log: slog.New(slog.DiscardHandler), root: t.TempDir()}
		err := f.apply("enable", []string{"nosuch0"})
		if err == nil || !strings.Contains(err.Error(), "nosuch0/forwarding") {
			t.Fatalf("err = %v", err)
		}
	})
}

// On kernels with force_forwarding (6.17+), an uplink gets it, so IPv6
// the data plane passes to the kernel is forwarded without the global
// switch; "keep" leaves it and warns.
func TestForwardingForcesIPv6(t *testing.T) {
	for _, tc := range []struct{ mode, want, wantLog string }{
		{"enable", "1", ""},
		{"keep", "0", "force_forwarding is off"},
	} {
		root := fakeSysctls(t, "up0", "1", "1", "0")
		p := filepath.Join(root, "ipv6/conf/up0/force_forwarding")
		if err := os.WriteFile(p, []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		f := forwarding{log: slog.New(slog.NewTextHandler(&log, nil)), root: root}
		if err := f.apply(tc.mode, []string{"up0"}); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		if got := strings.TrimSpace(string(b)); got != tc.want || !strings.Contains(log.String(), tc.wantLog) {
			t.Errorf("%s: force_forwarding %q (want %q), log %q", tc.mode, got, tc.want, log.String())
		}
	}
}
