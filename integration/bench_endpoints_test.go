package integration

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/testutil"
)

// TestBenchEndpoints measures endpoints at scale through the real daemon
// (bench/endpoints.sh runs it; AIRD_BENCH=1): N containers added one after
// the other over the API (latency of each add, as aird serves it), then a
// restart and a kill -9 with N endpoints (time from exec to READY=1), and
// aird's RSS. It prints BENCH lines; it asserts only that everything works.
func TestBenchEndpoints(t *testing.T) {
	if os.Getenv("AIRD_BENCH") == "" {
		t.Skip("benchmark: set AIRD_BENCH=1 (bench/endpoints.sh)")
	}
	total := 1000
	if v, err := strconv.Atoi(os.Getenv("AIRD_BENCH_N")); err == nil && v > 0 {
		total = v
	}
	n := endpointNodeWith(t, "10.200.0.0/20")
	n.start()
	nss := make([]string, total)
	for i := range nss {
		nss[i] = testutil.NewNetns(t, "airdB-")
	}
	client := api.NewClient(n.socket)
	if _, errs, code := n.airctl("log-level", "debug"); code != 0 {
		t.Fatalf("log-level debug: %s", errs)
	}
	lat := make([]time.Duration, 0, total)
	for i, ns := range nss {
		req := api.EndpointRequest{Name: fmt.Sprintf("pod-%d", i), Netns: "/run/netns/" + ns}
		start := time.Now()
		if err := client.Do(context.Background(), "POST", "/v1/endpoints", req, nil); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("BENCH endpoint add (n=%d): p50 %s p90 %s p99 %s max %s\n", total, q(0.5).Round(time.Microsecond),
		q(0.9).Round(time.Microsecond), q(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	fmt.Printf("BENCH aird RSS with %d endpoints: %s\n", total, rss(t, n))
	printSteps(n.log.String())

	// The last one works (the outside reaches it through XDP).
	last := n.endpoint(fmt.Sprintf("pod-%d", total-1))
	nameServer(t, nss[total-1], last.Name)
	if who, err := dialName(t, n.peerNS, addrOf(t, last, "ipv6")); err != nil || who != last.Name {
		t.Fatalf("%s: %q, %v", last.Name, who, err)
	}

	for _, how := range []string{"restart (SIGUSR2)", "kill -9"} {
		if how == "kill -9" {
			n.kill()
		} else {
			n.stopForRestart()
		}
		start := time.Now()
		n.start()
		fmt.Printf("BENCH %s with %d endpoints: READY after %s\n", how, total, time.Since(start).Round(time.Millisecond))
		logs := strings.Split(n.log.String(), "\n")
		for _, l := range logs[max(0, len(logs)-400):] {
			for _, m := range []string{"aird starting", "datapath loaded", "ipam store opened", "endpoints adopted", "aird ready"} {
				if strings.Contains(l, "msg=\""+m) {
					fmt.Printf("BENCH   %s\n", l)
				}
			}
		}
		if eps := n.endpoints(); len(eps) != total {
			t.Fatalf("%d endpoints after %s, want %d", len(eps), how, total)
		}
		if who, err := dialName(t, n.peerNS, addrOf(t, last, "ipv6")); err != nil || who != last.Name {
			t.Fatalf("%s after %s: %q, %v", last.Name, how, who, err)
		}
	}
}

// rss returns aird's resident set size from /proc.
func rss(t *testing.T, n *node) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
		}
	}
	return "unknown"
}

// printSteps summarizes the "endpoint add steps" debug lines: per step,
// the median and the 99th percentile.
func printSteps(log string) {
	steps := map[string][]time.Duration{}
	var order []string
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, `msg="endpoint add steps"`) {
			continue
		}
		for _, f := range strings.Fields(l) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			d, err := time.ParseDuration(v)
			if err != nil || k == "time" {
				continue
			}
			if _, seen := steps[k]; !seen {
				order = append(order, k)
			}
			steps[k] = append(steps[k], d)
		}
	}
	for _, k := range order {
		ds := steps[k]
		slices.Sort(ds)
		fmt.Printf("BENCH   step %-9s p50 %s p99 %s\n", k, ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)])
	}
}
