package integration

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/aird-net/aird/bpf"
)

// mapEntries reads every entry of a pinned map of a running aird, as hex
// key to hex value (for maglev_v2, the inner map's id: a table built
// anew has a new id).
func mapEntries(t *testing.T, pin, name string) map[string]string {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(filepath.Join(pin, "maps", name), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := map[string]string{}
	var k, v []byte
	it := m.Iterate()
	for it.Next(&k, &v) {
		out[hex.EncodeToString(k)] = hex.EncodeToString(v)
	}
	if err := it.Err(); err != nil {
		t.Fatalf("iterate %s: %v", name, err)
	}
	return out
}

// changedKeys returns the keys whose value differs between a and b, or
// that only one has.
func changedKeys(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// includeServices is one file of services.d: count services on VIPs
// fd00:300::<base+i>, three backends each; the service named changed, if
// any, has a fourth.
func includeServices(base, count int, changed string) string {
	var b strings.Builder
	for i := range count {
		name := fmt.Sprintf("s%d", base+i)
		backends := `"fd00:b::1", "fd00:b::2", "fd00:b::3"`
		if name == changed {
			backends += `, "fd00:b::4"`
		}
		fmt.Fprintf(&b, "[[services]]\nname = %q\nvip = \"fd00:300::%x\"\nport = 80\nhealth-check = { type = \"none\" }\nbackends = [%s]\n\n",
			name, 0x100+base+i, backends)
	}
	return b.String()
}

// TestReloadOfOneIncludedFile: aird runs with its services in three files
// of services.d (include); a reload after one service of one file changed
// (a backend added) programs that service and nothing else - the other
// services' vips entries, table records and Maglev tables (the inner maps'
// ids) are untouched, and the changed one's table is new; a reload with a
// bad file fails naming its file:line and changes nothing.
func TestReloadOfOneIncludedFile(t *testing.T) {
	n := newNode(t)
	dir := filepath.Join(filepath.Dir(n.cfgPath), "services.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for f := range 3 {
		write(fmt.Sprintf("%d.toml", f), includeServices(f*5, 5, ""))
	}
	n.writeConfig("include = [\"services.d/*.toml\"]\n\n" + n.config("info", "uplink0") +
		"\n[[ipam.pools]]\nname = \"services\"\nkind = \"service\"\nprefixes = [\"fd00:300::/112\"]\n")
	n.start()
	snapshot := func() map[string]map[string]string {
		out := map[string]map[string]string{}
		for _, m := range []string{bpf.DatapathMapVips, bpf.DatapathMapMaglevV2, bpf.DatapathMapMaglevMeta, bpf.DatapathMapBackends} {
			out[m] = mapEntries(t, n.pinPath, m)
		}
		return out
	}
	before := snapshot()
	if len(before[bpf.DatapathMapMaglevV2]) != 15 {
		t.Fatalf("%d Maglev tables for 15 services", len(before[bpf.DatapathMapMaglevV2]))
	}
	if tab := pinnedTable(t, n.pinPath, "fd00:300::107", 80); len(tab) != 3 {
		t.Fatalf("s7's table before the change: %v", tab)
	}

	write("1.toml", includeServices(5, 5, "s7"))
	if out, errs, code := n.airctl("reload"); code != 0 {
		t.Fatalf("reload: exit %d: %s%s", code, out, errs)
	}
	after := snapshot()
	if c := changedKeys(before[bpf.DatapathMapVips], after[bpf.DatapathMapVips]); len(c) != 0 {
		t.Errorf("vips entries changed: %v", c)
	}
	for _, m := range []string{bpf.DatapathMapMaglevV2, bpf.DatapathMapMaglevMeta} {
		if c := changedKeys(before[m], after[m]); len(c) != 1 {
			t.Errorf("%s: %d entries changed, want s7's alone: %v", m, len(c), c)
		}
	}
	if c := changedKeys(before[bpf.DatapathMapBackends], after[bpf.DatapathMapBackends]); len(c) != 1 {
		t.Errorf("backends: %d entries changed, want the new backend's: %v", len(c), c)
	}
	if tab := pinnedTable(t, n.pinPath, "fd00:300::107", 80); len(tab) != 4 {
		t.Fatalf("s7's table after the change: %v, want 4 backends", tab)
	}

	bad := filepath.Join(dir, "2.toml")
	write("2.toml", includeServices(10, 5, "")+"[[services]]\nname = \"s1\"\nvip = \"fd00:300::1ff\"\nport = 80\nbackends = [\"fd00:b::1\"]\n")
	_, errs, code := n.airctl("reload")
	if code == 0 || !strings.Contains(errs, bad+":37:1: services[5].name: duplicate service name \"s1\" (also services[1] in ") {
		t.Fatalf("reload with a duplicate across files: exit %d, stderr:\n%s", code, errs)
	}
	if c := changedKeys(after[bpf.DatapathMapMaglevV2], snapshot()[bpf.DatapathMapMaglevV2]); len(c) != 0 {
		t.Fatalf("a rejected reload changed the tables: %v", c)
	}
	if st := n.status(); st.Config.Generation != 2 {
		t.Fatalf("generation %d after a good and a rejected reload", st.Config.Generation)
	}
}
