package integration

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/bpf"
)

// largeService is service i of largeServices: 60 of 200 backend
// addresses, and one more for the service named extra.
func largeService(i int, extra string) string {
	var b strings.Builder
	name := fmt.Sprintf("s%d", i)
	fmt.Fprintf(&b, "[[services]]\nname = %q\nvip = \"fd00:300::%x\"\nport = 80\nhealth-check = { type = \"none\" }\nbackends = [", name, 0x1000+i)
	for j := range 60 {
		fmt.Fprintf(&b, "\"fd00:b::%x\", ", 1+(i+j)%200)
	}
	if name == extra {
		b.WriteString("\"fd00:b::ff\", ")
	}
	b.WriteString("]\n\n")
	return b.String()
}

// largeServices is count services of largeService, about 0.9 KB each.
func largeServices(count int, extra string) string {
	var b strings.Builder
	for i := range count {
		b.WriteString(largeService(i, extra))
	}
	return b.String()
}

var parsedBytes = regexp.MustCompile(`msg=reloaded .*parsed_bytes=(\d+)`)

// lastParsed is what the last "reloaded" line of the log says the reload
// parsed.
func (n *node) lastParsed(t *testing.T) int {
	t.Helper()
	m := parsedBytes.FindAllStringSubmatch(n.log.String(), -1)
	if len(m) == 0 {
		t.Fatal("no reloaded line in the log")
	}
	v, _ := strconv.Atoi(m[len(m)-1][1])
	return v
}

// TestReloadOfOneServiceInALargeFile: aird runs with 1,200 services in one
// file of 1.1 MB (no include); a reload after one service changed (a
// backend added) parses a small part of the file and programs that
// service alone - the other services' vips entries and Maglev tables are
// untouched; a reload of a file with a duplicate VIP, in lines moved down
// by a service inserted above it, fails naming the file, the line where
// the duplicate is now and the key, and changes nothing; the next good
// reload applies.
func TestReloadOfOneServiceInALargeFile(t *testing.T) {
	n := newNode(t)
	const count = 1200
	head := n.config("info", "uplink0") + "\n[lb]\nmax-vips = 4096\n\n[[ipam.pools]]\nname = \"services\"\nkind = \"service\"\nprefixes = [\"fd00:300::/112\"]\n\n"
	good := head + largeServices(count, "")
	if len(good) < 1<<20 {
		t.Fatalf("the file is %d bytes: below the size a reload keeps in chunks", len(good))
	}
	n.writeConfig(good)
	n.startWithin(90 * time.Second)
	snapshot := func() map[string]map[string]string {
		out := map[string]map[string]string{}
		for _, m := range []string{bpf.DatapathMapVips, bpf.DatapathMapMaglevV2, bpf.DatapathMapMaglevMeta} {
			out[m] = mapEntries(t, n.pinPath, m)
		}
		return out
	}
	before := snapshot()
	if len(before[bpf.DatapathMapMaglevV2]) != count {
		t.Fatalf("%d Maglev tables for %d services", len(before[bpf.DatapathMapMaglevV2]), count)
	}

	changed := head + largeServices(count, "s500")
	n.writeConfig(changed)
	if out, errs, code := n.airctl("reload"); code != 0 {
		t.Fatalf("reload: exit %d: %s%s", code, out, errs)
	}
	if p := n.lastParsed(t); p <= 0 || p > len(changed)/4 {
		t.Errorf("the reload of one changed service parsed %d of %d bytes", p, len(changed))
	}
	after := snapshot()
	if c := changedKeys(before[bpf.DatapathMapVips], after[bpf.DatapathMapVips]); len(c) != 0 {
		t.Errorf("vips entries changed: %v", c)
	}
	for _, m := range []string{bpf.DatapathMapMaglevV2, bpf.DatapathMapMaglevMeta} {
		if c := changedKeys(before[m], after[m]); len(c) != 1 {
			t.Errorf("%s: %d entries changed, want s500's alone: %v", m, len(c), c)
		}
	}
	if tab := pinnedTable(t, n.pinPath, fmt.Sprintf("fd00:300::%x", 0x1000+500), 80); len(tab) != 61 {
		t.Fatalf("s500's table after the change: %d backends, want 61", len(tab))
	}

	// A service inserted after s3 (lines move down), and s700 on s10's VIP.
	bad := strings.Replace(changed, largeService(3, ""), largeService(3, "")+largeService(2000, ""), 1)
	bad = strings.Replace(bad, fmt.Sprintf("name = \"s700\"\nvip = \"fd00:300::%x\"", 0x1000+700), fmt.Sprintf("name = \"s700\"\nvip = \"fd00:300::%x\"", 0x1000+10), 1)
	line := 1 + strings.Count(bad[:strings.Index(bad, "name = \"s700\"")], "\n") + 1
	n.writeConfig(bad)
	_, errs, code := n.airctl("reload")
	want := fmt.Sprintf("%s:%d:1: services[701].vip: VIP fd00:300::%x tcp port 80 is already used by services[11]", n.cfgPath, line, 0x1000+10)
	if code == 0 || !strings.Contains(errs, want) {
		t.Fatalf("reload with a duplicate VIP: exit %d, want %q in stderr:\n%s", code, want, errs)
	}
	if c := changedKeys(after[bpf.DatapathMapMaglevV2], snapshot()[bpf.DatapathMapMaglevV2]); len(c) != 0 {
		t.Fatalf("a rejected reload changed the tables: %v", c)
	}
	if st := n.status(); st.Config.Generation != 2 {
		t.Fatalf("generation %d after a good and a rejected reload", st.Config.Generation)
	}

	n.writeConfig(strings.Replace(changed, largeService(3, ""), largeService(3, "")+largeService(2000, ""), 1))
	if out, errs, code := n.airctl("reload"); code != 0 {
		t.Fatalf("reload: exit %d: %s%s", code, out, errs)
	}
	if st := n.status(); st.Config.Generation != 3 {
		t.Fatalf("generation %d after the good reload", st.Config.Generation)
	}
	if tables := len(snapshot()[bpf.DatapathMapMaglevV2]); tables != count+1 {
		t.Fatalf("%d Maglev tables after adding a service to %d", tables, count)
	}
}
