package config_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aird-net/aird/internal/config"
)

func TestDiff(t *testing.T) {
	src, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	base, err := config.Parse("base.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		old, new string // replaced once in the example
		want     []string
	}{
		{"comment only", "# Uplink interfaces", "# The uplink interfaces", nil},
		{"default written out", `# pin-path = "/sys/fs/bpf/aird"`, `pin-path = "/sys/fs/bpf/aird"`, nil},
		{"default router-id written out", `# router-id = "10.255.0.1"        # default: node.router-id`, `router-id = "10.255.0.1"`, nil},
		{"same value, other spelling", `socket-mode = 0o660`, `socket-mode = 432`, nil},
		{"empty array", `# large-communities = ["4200000000:1:1"]`, `large-communities = []`, nil},
		{"backend weight", "weight = 50", "weight = 60", []string{config.SectionServices}},
		{"health check", `interval = "2s"`, `interval = "3s"`, []string{config.SectionServices}},
		{"inline backend", `{ address = "fd00:100:3::1", weight = 0 }`, `{ address = "fd00:100:3::1" }`, []string{config.SectionServices}},
		{"peer", "med = 10", "med = 20", []string{config.SectionBGP}},
		{"peer bfd", `min-rx = "300ms"`, `min-rx = "200ms"`, []string{config.SectionBGP}},
		{"bgp timers", `hold-time = "9s"`, `hold-time = "12s"`, []string{config.SectionBGP}},
		{"uplinks", `uplinks = ["eth0", "eth1"]`, `uplinks = ["eth0"]`, []string{config.SectionNode}},
		{"xdp mode", `xdp-mode = "auto"`, `xdp-mode = "native"`, []string{config.SectionDatapath}},
		{"pool", `prefixes = ["fd00:210::/48"]`, `prefixes = ["fd00:210::/48", "fd00:211::/48"]`, []string{config.SectionIPAM}},
		{"lb", "icmp-too-big = true", "icmp-too-big = false", []string{config.SectionLB}},
		{"api", `# socket-group = "aird"`, `socket-group = "aird"`, []string{config.SectionAPI}},
		{"metrics", `listen = "127.0.0.1:9469"`, `listen = "127.0.0.1:9470"`, []string{config.SectionMetrics}},
		{"log level", `level = "info"`, `level = "debug"`, []string{config.SectionLog}},
		{"log format", `format = "text"`, `format = "json"`, []string{config.SectionLog}},
		{"two keys in one section", `level = "info"                # debug, info, warn, error; airctl log-level changes it live
format = "text"`, `level = "warn"
format = "json"`, []string{config.SectionLog}},
		// node.router-id is inherited by bgp.router-id: both change.
		{"inherited value", `router-id = "10.255.0.1"`, `router-id = "10.255.0.2"`, []string{config.SectionNode, config.SectionBGP}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(src), tc.old) {
				t.Fatalf("%q is not in the example", tc.old)
			}
			changed, err := config.Parse("changed.toml", []byte(strings.Replace(string(src), tc.old, tc.new, 1)))
			if err != nil {
				t.Fatal(err)
			}
			if got := config.Diff(base, changed); !slices.Equal(got, tc.want) {
				t.Errorf("Diff = %v, want %v", got, tc.want)
			}
			if got := config.Diff(changed, base); !slices.Equal(got, tc.want) {
				t.Errorf("reverse Diff = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDiffSections(t *testing.T) {
	all := []string{
		config.SectionNode, config.SectionDatapath, config.SectionBGP, config.SectionIPAM, config.SectionLB,
		config.SectionServices, config.SectionAPI, config.SectionMetrics, config.SectionLog,
	}
	c := config.Default()
	if got := config.Diff(nil, c); !slices.Equal(got, all) {
		t.Errorf("Diff(nil, cfg) = %v, want %v", got, all)
	}
	if got := config.Diff(c, config.Default()); len(got) != 0 {
		t.Errorf("Diff(Default, Default) = %v", got)
	}

	// Removing the [bgp] section (nil) and adding it back.
	src, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	withBGP, err := config.Parse("a.toml", src)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	noBGP := s[:strings.Index(s, "[bgp]")] + s[strings.Index(s, "[ipam]"):]
	without, err := config.Parse("b.toml", []byte(noBGP))
	if err != nil {
		t.Fatal(err)
	}
	if without.BGP != nil {
		t.Fatal("BGP is set without a [bgp] section")
	}
	for _, pair := range [][2]*config.Config{{withBGP, without}, {without, withBGP}} {
		if got := config.Diff(pair[0], pair[1]); !slices.Equal(got, []string{config.SectionBGP}) {
			t.Errorf("Diff = %v, want [bgp]", got)
		}
	}
}
