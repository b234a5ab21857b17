package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// TestCapabilities runs aird with exactly the capabilities aird.service
// grants, and with each of the BPF-related ones taken away, so the unit's
// list (and the reasons systemd/README.md gives for it) rest on what the
// kernel does with aird's own program: without CAP_PERFMON the verifier
// refuses the XDP program (pointer arithmetic such as data_end - data
// needs it), without CAP_BPF or CAP_NET_ADMIN it cannot be loaded or
// attached.
func TestCapabilities(t *testing.T) {
	testutil.RequireCommand(t, "setpriv")
	all := []string{"bpf", "net_admin", "net_raw", "net_bind_service", "perfmon"}
	for _, tc := range []struct {
		drop string
		want []string // all in the log of a failed start; none means it starts
	}{
		{"", nil},
		// The verifier's words depend on the program it checks first:
		// "pointer -= pointer prohibited" (aird_xdp's data_end - data) or
		// "pointer arithmetic with it prohibited for !root" (aird_hc).
		{"perfmon", []string{"load program: permission denied", "prohibited"}},
		{"bpf", []string{"operation not permitted"}},
		{"net_admin", []string{"operation not permitted"}},
	} {
		name := "all-five"
		if tc.drop != "" {
			name = "without-" + tc.drop
		}
		t.Run(name, func(t *testing.T) {
			caps := "-all"
			for _, c := range all {
				if c != tc.drop {
					caps += ",+" + c
				}
			}
			n := newNode(t)
			n.writeConfig(n.config("info", "uplink0"))
			n.launch("nsenter", "--net=/run/netns/"+n.ns, "setpriv",
				"--bounding-set="+caps, "--inh-caps="+caps, "--ambient-caps="+caps, n.aird, "--config", n.cfgPath)
			if len(tc.want) == 0 {
				n.notify.waitFor(t, "READY=1", 20*time.Second)
				if !n.attachedXDP("uplink0") {
					t.Fatal("uplink0 not attached")
				}
				n.stop()
				return
			}
			select {
			case err := <-n.exited:
				n.cmd = nil
				if err == nil || !containsAll(n.log.String(), tc.want) {
					t.Fatalf("without CAP_%s: exit %v, want a failed start saying %q:\n%s", strings.ToUpper(tc.drop), err, tc.want, n.log.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("without CAP_%s aird still runs after 20s:\n%s", strings.ToUpper(tc.drop), n.log.String())
			}
		})
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
