package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// checkPositions scans src (which must be valid TOML) and compares the
// positions of the given key paths, written as "LINE:COL".
func checkPositions(t *testing.T, src string, want map[string]string) {
	t.Helper()
	var raw map[string]any
	if _, err := toml.Decode(src, &raw); err != nil {
		t.Fatalf("test input is not valid TOML: %v", err)
	}
	pos := scanPositions([]byte(src))
	for path, w := range want {
		p, ok := pos.get(path)
		got := "missing"
		if ok {
			got = fmt.Sprintf("%d:%d", p.Line, p.Col)
		}
		if got != w {
			t.Errorf("position of %s = %s, want %s", path, got, w)
		}
	}
	if t.Failed() {
		t.Logf("all positions: %v", pos.all())
	}
}

func TestPositionsArrayOfTables(t *testing.T) {
	src := `[[services]]
name = "a"
[[services.backends]]
address = "x"
[[services]]
name = "b"
[[services.backends]]
[[services.backends]]
  [[services.backends]]
  address = "y"
  weight = 5
[services.health-check]
port = 1
[[bgp.peers]]
[bgp.peers.import]
prefixes = ["::/0"]
[[bgp.peers]]
[bgp.peers.bfd]
min-rx = "1s"
`
	checkPositions(t, src, map[string]string{
		"services":                        "1:1",
		"services[0]":                     "1:1",
		"services[0].name":                "2:1",
		"services[0].backends":            "3:1",
		"services[0].backends[0]":         "3:1",
		"services[0].backends[0].address": "4:1",
		"services[1]":                     "5:1",
		"services[1].name":                "6:1",
		"services[1].backends":            "7:1",
		"services[1].backends[0]":         "7:1",
		"services[1].backends[1]":         "8:1",
		"services[1].backends[2]":         "9:3",
		"services[1].backends[2].address": "10:3",
		"services[1].backends[2].weight":  "11:3",
		"services[1].health-check":        "12:1",
		"services[1].health-check.port":   "13:1",
		"bgp.peers[0]":                    "14:1",
		"bgp.peers[0].import":             "15:1",
		"bgp.peers[0].import.prefixes":    "16:1",
		"bgp.peers[0].import.prefixes[0]": "16:13",
		"bgp.peers[1]":                    "17:1",
		"bgp.peers[1].bfd.min-rx":         "19:1",
		"bgp":                             "14:1", // implicit: made by [[bgp.peers]]
	})
	pos := scanPositions([]byte(src))
	if pos.written("services[1].backends[3]") {
		t.Error("a fourth backend was recorded")
	}
	if pos.written("services[0].health-check") {
		t.Error("[services.health-check] was attributed to the first service")
	}
}

func TestPositionsDottedKeys(t *testing.T) {
	src := `[bgp]
drain.wait = "1s"
graceful-restart . enabled = true
"advertise".'pod-prefixes' = false
[node]
x.y.z = 1
`
	checkPositions(t, src, map[string]string{
		"bgp":                          "1:1",
		"bgp.drain":                    "2:1",
		"bgp.drain.wait":               "2:1",
		"bgp.graceful-restart.enabled": "3:1",
		"bgp.advertise.pod-prefixes":   "4:1",
		"node.x":                       "6:1",
		"node.x.y.z":                   "6:1",
	})
}

func TestPositionsInlineTables(t *testing.T) {
	src := `[[services]]
health-check = { type = "http", port = 8080, path = "/x{y}" }
bfd = {}
nested = { a = { b = 1 }, c = [1, 2] }
`
	checkPositions(t, src, map[string]string{
		"services[0].health-check":      "2:1",
		"services[0].health-check.type": "2:18",
		"services[0].health-check.port": "2:33",
		"services[0].health-check.path": "2:46",
		"services[0].bfd":               "3:1",
		"services[0].nested.a.b":        "4:18",
		"services[0].nested.c":          "4:27",
		"services[0].nested.c[1]":       "4:35",
	})
}

func TestPositionsArraysOfInlineTables(t *testing.T) {
	src := `[[services]]
backends = [
  # a comment with ] and } and [x] = 1
  { address = "fd00::1" },   # trailing comment
  { address = "fd00::2",
    weight = 0 },

  {address="fd00::3",weight=7}, ]
underlay = [ [ "a", "b" ], [ "c" ] ]
`
	checkPositions(t, src, map[string]string{
		"services[0].backends":            "2:1",
		"services[0].backends[0]":         "4:3",
		"services[0].backends[0].address": "4:5",
		"services[0].backends[1]":         "5:3",
		"services[0].backends[1].weight":  "6:5",
		"services[0].backends[2]":         "8:3",
		"services[0].backends[2].address": "8:4",
		"services[0].backends[2].weight":  "8:22",
		"services[0].underlay[0][1]":      "9:21",
		"services[0].underlay[1]":         "9:28",
		"services[0].underlay[1][0]":      "9:30",
	})
}

func TestPositionsStringsDoNotConfuse(t *testing.T) {
	src := `[node]
a = """
[not.a.table]
b = 1 # not a comment
\""" still inside ' and ''' ""
"""
c = '''
[[also.not]]
x = "y" # nope
'''
d = "[x] = 1 # \" \\"
e = 'C:\path\[y]'
f = """ends with quotes"""""
g = '''ends with quotes'''''
h = 1
`
	checkPositions(t, src, map[string]string{
		"node.a": "2:1",
		"node.c": "7:1",
		"node.d": "11:1",
		"node.e": "12:1",
		"node.f": "13:1",
		"node.g": "14:1",
		"node.h": "15:1",
	})
	pos := scanPositions([]byte(src))
	for path := range pos.all() {
		if strings.Contains(path, "not") || strings.Contains(path, "x") || strings.Contains(path, "y") {
			t.Errorf("string content was scanned as a key: %s", path)
		}
	}
}

func TestPositionsQuotedKeysAndComments(t *testing.T) {
	src := "# [commented] = 1\r\n" +
		"[ \"node\" ]   # [x]\r\n" +
		"\"name\" = \"n\" # name = 2\r\n" +
		"'router-id' = \"10.0.0.1\"\r\n" +
		"\"esc\\u0061ped\" = 1\r\n" +
		"[\"a.b\".c]\r\n" +
		"d = 1\r\n"
	checkPositions(t, src, map[string]string{
		"node":           "2:1",
		"node.name":      "3:1",
		"node.router-id": "4:1",
		"node.escaped":   "5:1",
		"a.b.c.d":        "7:1",
	})
	pos := scanPositions([]byte(src))
	if pos.written("commented") {
		t.Error("a commented-out key was recorded")
	}
	if pos.written("x") {
		t.Error("a comment after a header was scanned")
	}
}

func TestPositionsLookup(t *testing.T) {
	pos := scanPositions([]byte("[bgp]\nasn = 1\n[[bgp.peers]]\naddress = \"::1\"\n"))
	for path, want := range map[string]Pos{
		"bgp.asn":                     {2, 1},
		"bgp.hold-time":               {1, 1}, // defaulted: its table
		"bgp.peers[0].asn":            {3, 1}, // missing: its element
		"bgp.peers[0].bfd.multiplier": {3, 1},
		"bgp.peers[5].asn":            {3, 1}, // no such element: the array
		"node.underlay":               {},     // nothing written
		"":                            {},
	} {
		if got := pos.lookup(path); got != want {
			t.Errorf("lookup(%q) = %v, want %v", path, got, want)
		}
	}
	for path, want := range map[string]string{
		"a.b[2].c": "a.b[2]",
		"a.b[2]":   "a.b",
		"a[0][1]":  "a[0]",
		"a":        "",
	} {
		if got := parentPath(path); got != want {
			t.Errorf("parentPath(%q) = %q, want %q", path, got, want)
		}
	}
}

// all returns the path and position of every node.
func (p positions) all() map[string]Pos {
	out := map[string]Pos{}
	var walk func(path string, n uint32)
	walk = func(path string, n uint32) {
		if n != posRoot {
			out[path] = p.pos(n)
		}
		for e, c := range p.edges {
			if e.parent == n {
				walk(joinPath(path, e.key), c)
			}
		}
		for i := range int(p.nodes[n].elems) {
			if c, ok := p.elemAt(n, i); ok {
				walk(indexPath(path, i), c)
			}
		}
	}
	walk("", posRoot)
	return out
}
