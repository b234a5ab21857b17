package bgp

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The FIB writer against a real kernel (in the node namespace): ECMP
// routes, IPv4 routes via IPv6 gateways, replacing, deleting only our own
// routes before the sync, everything of ours after it, and flushing.
func TestFIBSync(t *testing.T) {
	labTest(t, func(t *testing.T, l *lab) {}, func(t *testing.T, l labSpec) {
		// A veth pair (no dummy driver in every kernel) gives a link
		// with carrier for on-link gateways.
		ip(t, "link", "add", "aird0", "type", "veth", "peer", "name", "aird1")
		ip(t, "link", "set", "aird1", "up")
		ip(t, "link", "set", "aird0", "up")
		ip(t, "addr", "add", "fd00:1::1/64", "dev", "aird0", "nodad")
		f, err := newFIB(l.Table, l.Proto, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		defer f.close()
		a, b := nexthop{addr: netip.MustParseAddr("fd00:1::a")}, nexthop{addr: netip.MustParseAddr("fd00:1::b")}
		want := fibRoutes{
			netip.MustParsePrefix("fd00:9::/64"): {a, b},
			netip.MustParsePrefix("0.0.0.0/0"):   {a},
			netip.MustParsePrefix("10.9.0.0/16"): {a, b},
		}
		table, proto := strconv.Itoa(l.Table), strconv.Itoa(l.Proto)
		// Left by an earlier process: one with our metric, one without.
		ip(t, "-6", "route", "add", "fd00:8::/64", "via", "fd00:1::a", "table", table, "proto", proto, "metric", "20")
		ip(t, "-6", "route", "add", "fd00:7::/64", "via", "fd00:1::a", "table", table, "proto", proto, "metric", "50")
		if _, err := f.sync(want, false, false); err != nil {
			t.Fatal(err)
		}
		v6, v4 := fibRoutesOf(t, l, "-6"), fibRoutesOf(t, l, "-4")
		for _, s := range []string{"fd00:9::/64 metric 20", "nexthop via fd00:1::a dev aird0", "nexthop via fd00:1::b dev aird0", "fd00:8::/64", "fd00:7::/64"} {
			if !strings.Contains(v6, s) {
				t.Errorf("IPv6 FIB lacks %q:\n%s", s, v6)
			}
		}
		for _, s := range []string{"default via inet6 fd00:1::a dev aird0", "10.9.0.0/16 metric 20", "nexthop via inet6 fd00:1::b"} {
			if !strings.Contains(v4, s) {
				t.Errorf("IPv4 FIB lacks %q:\n%s", s, v4)
			}
		}
		// In step: nothing to do.
		have, _, err := f.list()
		if err != nil || len(have) != 4 {
			t.Errorf("list: %v, %v", have, err)
		}

		// Before the sync: our own withdrawn route goes, the earlier
		// process's stay.
		delete(want, netip.MustParsePrefix("fd00:9::/64"))
		want[netip.MustParsePrefix("0.0.0.0/0")] = []nexthop{a, b}
		if _, err := f.sync(want, false, false); err != nil {
			t.Fatal(err)
		}
		v6, v4 = fibRoutesOf(t, l, "-6"), fibRoutesOf(t, l, "-4")
		if strings.Contains(v6, "fd00:9::") || !strings.Contains(v6, "fd00:8::/64") || !strings.Contains(v6, "fd00:7::/64") {
			t.Errorf("before the sync:\n%s", v6)
		}
		if !strings.Contains(v4, "default metric 20") || strings.Count(v4, "nexthop via inet6") != 4 {
			t.Errorf("IPv4 default not ECMP:\n%s", v4)
		}
		// Synced: only what the RIB holds.
		if _, err := f.sync(want, true, false); err != nil {
			t.Fatal(err)
		}
		if v6 = fibRoutesOf(t, l, "-6"); strings.TrimSpace(v6) != "" {
			t.Errorf("after the sync, IPv6 FIB:\n%s", v6)
		}
		if err := f.flush(); err != nil {
			t.Fatal(err)
		}
		if v := fibRoutesOf(t, l, "-4") + fibRoutesOf(t, l, "-6"); strings.TrimSpace(v) != "" {
			t.Errorf("after flush:\n%s", v)
		}

		// Many routes go in batches; a route the kernel refuses (an
		// unreachable gateway) is reported, the others are installed,
		// and the next kernel check names it for another try.
		many := fibRoutes{}
		for i := range 3000 {
			many[netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, 0x20, 0, 0, 0, byte(i >> 8), byte(i)}), 64)] = []nexthop{a}
		}
		bad := netip.MustParsePrefix("fd00:bad::/64")
		many[bad] = []nexthop{{addr: netip.MustParseAddr("fd00:99::1")}}
		_, err = f.sync(many, true, false)
		if err == nil || !strings.Contains(err.Error(), "fd00:bad::/64") {
			t.Errorf("sync with an unreachable gateway: %v", err)
		}
		if have, _, err := f.list(); err != nil || len(have) != 3000 {
			t.Errorf("after a batched sync: %d routes of ours in the kernel, %v; want 3000", len(have), err)
		}
		if retry, err := f.refresh(true); err != nil || len(retry) != 1 || retry[0] != bad {
			t.Errorf("check after the refused route: %v, %v; want %s", retry, err, bad)
		}
		delete(many, bad)
		if _, err := f.sync(many, true, false); err != nil || len(f.have) != 3000 {
			t.Errorf("second pass: %v, have %d", err, len(f.have))
		}
		// Deleted and changed behind our back: the check names both, and
		// an update with what the RIB asks for puts them back.
		gone, moved := netip.MustParsePrefix("fd00:2000::/64"), netip.MustParsePrefix("fd00:2000:0:1::/64")
		ip(t, "-6", "route", "del", gone.String(), "table", table, "proto", proto, "metric", "20")
		ip(t, "-6", "route", "replace", moved.String(), "via", "fd00:1::b", "table", table, "proto", proto, "metric", "20")
		drifted, err := f.refresh(true)
		slices.SortFunc(drifted, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		if err != nil || len(drifted) != 2 || drifted[0] != gone || drifted[1] != moved {
			t.Errorf("check after changes behind our back: %v, %v; want %s and %s", drifted, err, gone, moved)
		}
		if n, err := f.update([]fibChange{{gone, many[gone]}, {moved, many[moved]}}, true); err != nil || n != 2 {
			t.Errorf("update: %d changes, %v", n, err)
		}
		if v := fibRoutesOf(t, l, "-6"); !strings.Contains(v, "fd00:2000::/64 via fd00:1::a") || !strings.Contains(v, "fd00:2000:0:1::/64 via fd00:1::a") {
			t.Errorf("the update did not put back fd00:2000::/64 and fd00:2000:0:1::/64")
		}
		if err := f.flush(); err != nil {
			t.Fatal(err)
		}

		// Only the last message of a batch is acknowledged: refusals
		// first, in the middle and last of a batch are each reported
		// with their own error, and the rest of the batch is applied.
		unreachable := []nexthop{{addr: netip.MustParseAddr("fd00:99::1")}}
		good1, good2 := netip.MustParsePrefix("fd00:5:1::/64"), netip.MustParsePrefix("fd00:5:2::/64")
		ops := []struct {
			p       netip.Prefix
			del     bool
			nhs     []nexthop
			refused bool
		}{
			{netip.MustParsePrefix("fd00:6:1::/64"), false, unreachable, true},
			{good1, false, []nexthop{a}, false},
			{netip.MustParsePrefix("fd00:6:2::/64"), true, nil, true}, // not there: ESRCH
			{good2, false, []nexthop{b}, false},
			{netip.MustParsePrefix("fd00:6:3::/64"), false, unreachable, true},
		}
		for _, op := range ops {
			if op.del {
				err = f.w.del(op.p)
			} else {
				err = f.w.replace(op.p, op.nhs, op.nhs)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := f.w.flush(); err != nil {
			t.Fatal(err)
		}
		res := f.w.take()
		if len(res) != len(ops) {
			t.Fatalf("%d results for %d changes", len(res), len(ops))
		}
		for i, op := range ops {
			if res[i].prefix != op.p || (res[i].err != nil) != op.refused {
				t.Errorf("change %d (%s): result %s, %v; refused: %v", i, op.p, res[i].prefix, res[i].err, op.refused)
			}
		}
		if v := fibRoutesOf(t, l, "-6"); !strings.Contains(v, "fd00:5:1::/64 via fd00:1::a") || !strings.Contains(v, "fd00:5:2::/64 via fd00:1::b") ||
			strings.Contains(v, "fd00:6:") {
			t.Errorf("after a batch with refusals:\n%s", v)
		}
	})
}
