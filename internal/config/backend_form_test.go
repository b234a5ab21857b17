package config

import (
	"net/netip"
	"strings"
	"testing"
)

// A backend may be written as its address alone (weight 100), mixed with
// tables; a string that is no address is an error at its element.
func TestBackendStringForm(t *testing.T) {
	base := "[node]\nname = \"n\"\nunderlay = [\"10.100.1.1\"]\n[[ipam.pools]]\nname = \"s\"\nkind = \"service\"\nprefixes = [\"fd00:300::/112\"]\n" +
		"[[services]]\nname = \"web\"\nvip = \"fd00:300::10\"\nport = 80\n"
	c, err := Parse("a.toml", []byte(base+`backends = ["fd00:2::1", { address = "fd00:2::2", weight = 7 }]`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Backend{{netip.MustParseAddr("fd00:2::1"), 100}, {netip.MustParseAddr("fd00:2::2"), 7}}
	if got := c.Services[0].Backends; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("backends %+v, want %+v", got, want)
	}
	_, err = Parse("a.toml", []byte(base+`backends = ["fd00:2::1", "web1"]`+"\n"))
	if err == nil || !strings.Contains(err.Error(), `a.toml:12:26: services[0].backends[1]: invalid address "web1"`) {
		t.Fatalf("a backend that is no address: %v", err)
	}
}
