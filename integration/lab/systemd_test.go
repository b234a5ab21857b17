package lab

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// TestRackSystemd: lb1's aird under a real systemd - systemd-nspawn booted
// in lb1's network namespace, with the host's bpffs, aird.service as
// installed plus a drop-in for the lab's configuration - restarted with
// `systemctl restart aird` and killed with SIGKILL (systemd starts it
// again: Restart=on-failure) under continuous traffic, with the counts of
// TestRackRestarts: ≥ 10,000 requests, 0 failed, 0 broken connections,
// no VIP route ever leaving a ToR. The rest of the rack runs as plain
// processes (docs/lab.md).
func TestRackSystemd(t *testing.T) {
	testutil.NspawnRequire(t)
	l := upLab(t)
	lb1 := l.LBs[0]
	dir := filepath.Dir(lb1.Config())
	unit := filepath.Join(testutil.ModuleRoot(t), "systemd", "aird.service")
	dropIn := fmt.Sprintf(`# the lab's configuration, socket and state (integration/lab)
[Service]
ExecStart=
ExecStart=/usr/bin/aird --config %s
ReadWritePaths=%s
Environment=STATE_DIRECTORY=%s
`, lb1.Config(), dir, lb1.stateDir())
	c := testutil.NspawnBootWith(t, testutil.NspawnOptions{
		NetNS:     "/run/netns/" + lb1.NS,
		HostBPFFS: true,
		Binds:     []string{dir},
		Install: func(root string) {
			testutil.NspawnInstallFile(t, root, l.opts.Aird, "/usr/bin/aird", 0o755)
			testutil.NspawnInstallFile(t, root, l.opts.Airctl, "/usr/bin/airctl", 0o755)
			testutil.NspawnInstallUnit(t, root, unit)
			testutil.NspawnWriteFile(t, root, "/etc/systemd/system/aird.service.d/lab.conf", []byte(dropIn), 0o644)
		},
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- lb1: journalctl -u aird ---\n%s", c.Journal("aird"))
		}
	})
	mainPID := func() string {
		out, _ := c.Exec("systemctl", "show", "aird", "-p", "MainPID", "--value")
		return strings.TrimSpace(out)
	}

	// Hand lb1 over from the plain process to systemd: a restart too.
	if err := lb1.StopWith(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	if out, err := c.Exec("systemctl", "start", "aird"); err != nil {
		t.Fatalf("systemctl start aird on lb1: %v\n%s\n%s", err, out, c.Journal("aird"))
	}
	if err := l.waitServing(); err != nil {
		t.Fatalf("lb1 under systemd: %v\n%s", err, c.Journal("aird"))
	}
	t.Logf("lb1's aird runs under systemd in the container (main PID %s in it)", mainPID())

	t.Run("systemctl restart", func(t *testing.T) {
		underLoad(t, l, 10000, func(t *testing.T) {
			before := mainPID()
			if out, err := c.Exec("systemctl", "restart", "aird"); err != nil {
				t.Fatalf("systemctl restart aird: %v\n%s", err, out)
			}
			if pid := mainPID(); pid == before || pid == "0" {
				t.Fatalf("systemctl restart aird: main PID %s, before %s", pid, before)
			}
			if err := l.waitServing(); err != nil {
				t.Fatal(fmt.Errorf("after the restart: %w", err))
			}
		})
		// What aird made of it: a restart (the job systemd ran), so it
		// kept its routes, sent no CEASE.
		if j := c.Journal("aird"); !strings.Contains(j, "intent=restart") || !strings.Contains(j, "systemd job restart") {
			t.Errorf("aird did not take systemctl restart for a restart:\n%s", j)
		}
	})
	t.Run("SIGKILL, systemd restarts it", func(t *testing.T) {
		underLoad(t, l, 10000, func(t *testing.T) {
			before := mainPID()
			if out, err := c.Exec("systemctl", "kill", "--kill-whom=main", "-s", "KILL", "aird"); err != nil {
				t.Fatalf("systemctl kill --kill-whom=main -s KILL aird: %v\n%s", err, out)
			}
			// RestartSec=2s, then READY=1.
			if !waitFor(60*time.Second, func() bool {
				pid := mainPID()
				active, _ := c.Exec("systemctl", "is-active", "aird")
				return pid != before && pid != "0" && strings.TrimSpace(active) == "active"
			}) {
				t.Fatalf("systemd did not start aird again within 60s:\n%s", c.Journal("aird"))
			}
			if err := l.waitServing(); err != nil {
				t.Fatal(fmt.Errorf("after the restart: %w", err))
			}
		})
	})
	for _, line := range strings.Split(c.Journal("aird"), "\n") {
		if strings.Contains(line, "aird stopping") || strings.Contains(line, "bgp: speaker started") || strings.Contains(line, "Main process exited") {
			t.Log(line)
		}
	}
}
