package daemon

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aird-net/aird/bgp"
	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/doccheck"
	"github.com/aird-net/aird/internal/metrics"
	"github.com/aird-net/aird/internal/version"
)

// exportedMetrics returns every metric aird exports, by name, with its
// label names (variable and constant), sorted: the registry's own, the
// components' collectors as Run registers them, and the BGP speaker's
// (whose collector bgpCollector forwards unchecked, without describing
// it).
func exportedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	reg := metrics.New(version.Get())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		var labels []string
		if len(mf.Metric) > 0 {
			for _, lp := range mf.Metric[0].Label {
				labels = append(labels, lp.GetName())
			}
		}
		sort.Strings(labels)
		out[mf.GetName()] = labels
	}
	d := &Daemon{}
	cs := append(d.collectors(), (*bgp.Speaker)(nil).Collector())
	ch := make(chan *prometheus.Desc, 100)
	for _, c := range cs {
		c.Describe(ch)
	}
	close(ch)
	for desc := range ch {
		m := descParts.FindStringSubmatch(desc.String())
		if m == nil {
			t.Fatalf("cannot read %s", desc)
		}
		var labels []string
		for _, l := range strings.Split(m[2], ",") {
			if l != "" {
				labels = append(labels, l)
			}
		}
		sort.Strings(labels)
		out[m[1]] = labels
	}
	return out
}

var (
	descParts = regexp.MustCompile(`^Desc\{fqName: "([^"]+)", .*constLabels: \{\}, variableLabels: \{([^}]*)\}\}$`)
	// metricRef is a metric named in a document: aird_NAME, an optional
	// alternation of name endings (aird_x_{a,b}), an optional wildcard,
	// optional labels ({peer,family}, {event="ct_flood"}, {…}).
	metricRef = regexp.MustCompile(`aird_([a-z0-9_]+)(\{[a-z,]+\}(\{[^}]*\})?|\*|\{[^}]*\})?`)
)

// TestDocsNameExportedMetrics: every metric a document names in its text
// (code spans) is exported, with the labels it lists (all of them, when
// it lists names only) and only label values aird uses for the event,
// drop and router counters.
func TestDocsNameExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	programs := bpfProgramNames(t)
	values := statNames()
	refs, err := doccheck.Refs("../..")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range refs {
		if r.Block {
			continue // configuration of other programs (BIRD's `template bgp aird_node`)
		}
		for _, m := range metricRef.FindAllStringSubmatch(r.Text, -1) {
			name, suffix := "aird_"+m[1], m[2]
			if programs[name] {
				continue // a BPF program: `aird_xdp`, `aird_xdp_ep`, `aird_hc`
			}
			n++
			where := r.File + ":" + strconv.Itoa(r.Line) + ": `" + r.Text + "`: "
			var names []string
			labels := suffix
			switch {
			case suffix == "*":
				if !hasPrefix(exported, name) {
					t.Errorf("%sno metric starts with %s", where, name)
				}
				continue
			case strings.HasSuffix(name, "_") && strings.HasPrefix(suffix, "{") && !strings.Contains(suffix[:strings.Index(suffix, "}")], "="):
				alt, rest, _ := strings.Cut(strings.TrimPrefix(suffix, "{"), "}")
				for _, a := range strings.Split(alt, ",") {
					names = append(names, name+a)
				}
				labels = rest
			default:
				names = []string{name}
			}
			for _, nm := range names {
				have, ok := exported[nm]
				if !ok {
					t.Errorf("%s%s is not exported", where, nm)
					continue
				}
				if msg := checkLabels(nm, have, labels, values); msg != "" {
					t.Errorf("%s%s", where, msg)
				}
			}
		}
	}
	if n < 30 {
		t.Errorf("only %d metrics found in the documents: is the scanner broken?", n)
	}
}

// checkLabels checks a label list written after a metric's name:
// "{peer,family}" must be all its labels; "{event=\"ct_flood\"}" names
// one label and its value; "{…}" and "" say nothing.
func checkLabels(name string, have []string, labels string, values map[string][]string) string {
	labels = strings.TrimSuffix(strings.TrimPrefix(labels, "{"), "}")
	if labels == "" || labels == "…" {
		return ""
	}
	var names []string
	for _, l := range strings.Split(labels, ",") {
		ln, v, hasValue := strings.Cut(l, "=")
		if !slices.Contains(have, ln) {
			return name + " has no label " + ln + " (its labels: " + strings.Join(have, ",") + ")"
		}
		names = append(names, ln)
		if !hasValue {
			continue
		}
		known, checked := values[name+"/"+ln]
		for _, alt := range strings.Split(strings.ReplaceAll(v, `\|`, "|"), "|") {
			alt = strings.Trim(alt, `"`)
			if checked && !slices.Contains(known, alt) {
				return name + ": " + ln + "=\"" + alt + "\" is not a value aird uses"
			}
		}
		return "" // a selector, not the list of labels
	}
	sort.Strings(names)
	if !slices.Equal(names, have) {
		return name + "{" + labels + "}: its labels are {" + strings.Join(have, ",") + "}"
	}
	return ""
}

// statNames are the label values of the counters named after the data
// plane's enums (bpf/pipeline.h, read from the object's BTF).
func statNames() map[string][]string {
	var events, drops, router []string
	for _, s := range bpf.LBStats() {
		events = append(events, s.String())
	}
	for _, r := range bpf.DropReasons() {
		drops = append(drops, r.String())
	}
	for s := bpf.DatapathRouterStat(0); s < bpf.DatapathRouterStatROUTER_STAT_MAX; s++ {
		router = append(router, s.String())
	}
	return map[string][]string{
		"aird_lb_events_total/event":       events,
		"aird_lb_drops_total/reason":       drops,
		"aird_router_events_total/event":   router,
		"aird_xdp_packets_total/family":    {"ipv4", "ipv6", "other", "malformed"},
		"aird_endpoint_drops_total/reason": {"spoofed", "tunnel"},
		"aird_config_reloads_total/result": {"success", "failure"},
	}
}

func bpfProgramNames(t *testing.T) map[string]bool {
	t.Helper()
	spec, err := bpf.LoadDatapath()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for name := range spec.Programs {
		out[name] = true
	}
	return out
}

func hasPrefix(m map[string][]string, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// statsLine is a line of `airctl lb stats` output in a code block.
var statsLine = regexp.MustCompile(`^(event|drop)\s+([a-z0-9_]+)\s+[0-9]+$`)

// snakeName is a code span that is one snake_case word: a counter, a map,
// a metric, a JSON field, a sysctl, a BPF helper.
var snakeName = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)+$`)

// otherSnakeNames are the snake_case words the documents may name that are
// neither counters, maps, programs nor metrics of aird, each with what it is.
var otherSnakeNames = map[string]string{
	"accept_ra":              "sysctl",
	"force_forwarding":       "sysctl",
	"rp_filter":              "sysctl",
	"bpf_fib_lookup":         "BPF helper",
	"bpf_loop":               "BPF helper",
	"bpf_redirect":           "BPF helper",
	"bpf_redirect_neigh":     "BPF helper",
	"bpf_link":               "kernel object",
	"ru_maxrss":              "getrusage field",
	"allow_ptr_leaks":        "kernel BPF permission",
	"perf_event_open":        "system call",
	"intent_source":          "log attribute",
	"parsed_bytes":           "log attribute",
	"router_id":              "misspelt key in the error example",
	"vip_id":                 "value of the vips map (bpf/lb_maps.h)",
	"rx_queue_0_xdp_packets": "veth driver counter (ethtool -S)",
	"veth_xdp_flush":         "veth driver function (drivers/net/veth.c)",
	"tcpi_last_ack_recv":     "struct tcp_info field (TCP_INFO)",
	"tcpi_last_data_recv":    "struct tcp_info field (TCP_INFO)",
	"vip_set_index":          "the hash that picks a vip_sets_v2 set (bpf/lb_maps.h)",
	"vip_sets":               "vip_sets_v2's name before its hash changed (older objects, bpf/vipsets.go)",
	"backend_stats":          "the backend counters' map before backend_cpu (older objects, bench/vipsets_test.go)",
	"nexthops":               "the next-hop cache's map before backend_cpu (older objects, bench/vipsets_test.go)",
	"backend_cpu_state":      "the value of backend_cpu (bpf/lb_maps.h)",
	"ct_tags":                "ct_tags_v2's name before the conntrack set hash changed (older objects, bpf/spec.go)",
	"flow_hash":              "the flow hash (bpf/flow.h)",
	"flow_ct_hash":           "the hash that picks a conntrack_v2 set (bpf/flow.h)",
	"hash_hi":                "field of a conntrack entry (bpf/lb_maps.h)",
	"pipeline_counters":      "the value of pipeline_stats (bpf/pipeline.h)",
	"family_stats":           "the family counters' map before pipeline_stats (older objects, bpf/spec.go)",
	"lb_stats":               "the event counters' map before pipeline_stats (older objects, bpf/spec.go)",
	"drop_stats":             "the drop counters' map before pipeline_stats (older objects, bpf/spec.go)",
}

// jsonFields are the JSON field names of the Go types in the repository
// (what `-o json` and the API show), read from their struct tags.
func jsonFields(t *testing.T) map[string]bool {
	t.Helper()
	tag := regexp.MustCompile("json:\"([a-z0-9_]+)[,\"]")
	out := map[string]bool{}
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range tag.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDocsNameExistingCounters: every snake_case name the audited
// documents write as code is a counter of the data plane (an lb event, a
// drop reason, a router event, a probe counter), one of its maps or
// programs, a metric, a JSON field of the API, or one of otherSnakeNames; so a renamed or removed
// counter or map fails here until the documents follow.
func TestDocsNameExistingCounters(t *testing.T) {
	known := map[string]bool{}
	for _, names := range statNames() {
		for _, n := range names {
			known[n] = true
		}
	}
	for n := range exportedMetrics(t) {
		known[n] = true
	}
	for n := range jsonFields(t) {
		known[n] = true
	}
	spec, err := bpf.LoadDatapath()
	if err != nil {
		t.Fatal(err)
	}
	for n := range spec.Maps {
		known[n] = true
	}
	for n := range spec.Programs {
		known[n] = true
	}
	refs, err := doccheck.Refs("../..")
	if err != nil {
		t.Fatal(err)
	}
	audited := []string{"README.md", "systemd/README.md", "docs/configuration.md", "docs/operator-guide.md", "docs/architecture.md", "docs/lab.md"}
	values := statNames()
	n := 0
	for _, r := range refs {
		// A line of `airctl lb stats` output: "event  ct_hit  48210".
		if m := statsLine.FindStringSubmatch(r.Text); r.Block && m != nil {
			list := values["aird_lb_events_total/event"]
			if m[1] == "drop" {
				list = values["aird_lb_drops_total/reason"]
			}
			if !slices.Contains(list, m[2]) {
				t.Errorf("%s:%d: `%s`: no %s counter %s", r.File, r.Line, r.Text, m[1], m[2])
			}
			continue
		}
		if r.Block || !slices.Contains(audited, r.File) || !snakeName.MatchString(r.Text) {
			continue
		}
		n++
		if _, other := otherSnakeNames[r.Text]; !known[r.Text] && !other {
			t.Errorf("%s:%d: `%s` is no counter, map, program or metric of aird (nor in otherSnakeNames)", r.File, r.Line, r.Text)
		}
	}
	if n < 40 {
		t.Errorf("only %d snake_case names found in the documents: is the scanner broken?", n)
	}
}

// TestDocsNameEveryMap: docs/architecture.md's "Map ownership" paragraph
// names every map of the data plane's object, and names no other.
func TestDocsNameEveryMap(t *testing.T) {
	b, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	_, para, ok := strings.Cut(string(b), "**Map ownership.**")
	if !ok {
		t.Fatal(`docs/architecture.md has no "**Map ownership.**" paragraph`)
	}
	para, _, _ = strings.Cut(para, "\n\n")
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`([a-z0-9_]+)`").FindAllStringSubmatch(para, -1) {
		named[m[1]] = true
	}
	spec, err := bpf.LoadDatapath()
	if err != nil {
		t.Fatal(err)
	}
	for name := range spec.Maps {
		if strings.HasPrefix(name, ".") {
			continue // .rodata: the object's constants
		}
		if !named[name] {
			t.Errorf("docs/architecture.md, Map ownership: map %s is not named", name)
		}
		delete(named, name)
	}
	for name := range named {
		t.Errorf("docs/architecture.md, Map ownership: names %s, which is no map of the object", name)
	}
}
