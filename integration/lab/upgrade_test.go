package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aird-net/aird/bpf"
	"github.com/aird-net/aird/internal/testutil"
)

// previousBuild builds aird from the parent of the newest commit that
// changed the data plane's objects (bpf/*.o: a pinned map or a program),
// and returns the binary and that commit. It needs the repository's
// history (a shallow clone cannot run the test).
func previousBuild(t *testing.T) (bin, rev string) {
	t.Helper()
	git := repoGit(t)
	last := git("log", "-1", "--format=%H", "--", "bpf/datapath_bpfel.o")
	if last == "" {
		testutil.Unavailable(t, "no commit changed bpf/datapath_bpfel.o (a shallow clone?)")
	}
	return buildAt(t, git("rev-parse", last+"^"))
}

// repoGit runs git in the module's repository and returns its trimmed
// output; a failure marks the test unavailable (no git, a shallow clone).
func repoGit(t *testing.T) func(args ...string) string {
	root := testutil.ModuleRoot(t)
	return func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", root}, args...)...).CombinedOutput()
		if err != nil {
			testutil.Unavailable(t, "git "+strings.Join(args, " ")+": "+string(out))
		}
		return strings.TrimSpace(string(out))
	}
}

// buildAt builds aird from commit rev of the repository (git archive, so
// the work tree is not touched) and returns the binary and the commit's
// full hash.
func buildAt(t *testing.T, rev string) (bin, commit string) {
	t.Helper()
	git := repoGit(t)
	rev = git("rev-parse", "--verify", rev+"^{commit}")
	dir := t.TempDir()
	tarball := filepath.Join(dir, "src.tar")
	git("archive", "-o", tarball, rev)
	if out, err := exec.Command("tar", "-x", "-C", dir, "-f", tarball).CombinedOutput(); err != nil {
		t.Fatalf("untar %s: %v\n%s", rev, err, out)
	}
	bin = filepath.Join(dir, "aird-previous")
	build := exec.Command("go", "build", "-o", bin, "./cmd/aird")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build aird at %s: %v\n%s", rev, err, out)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatal(err)
	}
	return bin, rev
}

// TestRackUpgrade: lb1 runs aird built from the commit before the newest
// data-plane change (its maps and programs pinned), and is replaced by the
// current build - restart outside systemd, as a package upgrade does it -
// under continuous traffic: no request fails, no established connection
// breaks, no route leaves the ToRs.
func TestRackUpgrade(t *testing.T) {
	old, rev := previousBuild(t)
	l := upLab(t)
	lb1 := l.LBs[0]
	if err := lb1.Restart(old); err != nil {
		t.Fatalf("start the previous build (%s) on lb1: %v", rev[:12], err)
	}
	if err := l.waitServing(); err != nil {
		t.Fatalf("the previous build (%s) on lb1: %v", rev[:12], err)
	}
	t.Logf("lb1 runs aird built at %s", rev[:12])
	// A previous build with the older conntrack (placed by the flow hash)
	// must have its flows migrated into this build's, and its pin removed.
	olderCT := filepath.Join(lb1.pinPath(), "maps", bpf.MapConntrackV1)
	_, err := os.Stat(olderCT)
	migrates := err == nil
	// A previous build with the counters in three maps (family_stats,
	// lb_stats, drop_stats) must have them carried over into
	// pipeline_stats: no event or drop counter goes backwards.
	olderStats := filepath.Join(lb1.pinPath(), "maps", bpf.MapEventStatsV1)
	_, err = os.Stat(olderStats)
	carries := err == nil
	var countsBefore Counters
	if carries {
		if countsBefore, err = lb1.DataplaneCounters(); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("upgrade", func(t *testing.T) {
		underLoad(t, l, 10000, func(t *testing.T) {
			if err := lb1.Restart(""); err != nil {
				t.Fatal(err)
			}
			if err := l.waitServing(); err != nil {
				t.Fatal(err)
			}
		})
		log := logOf(t, lb1)
		adopted := strings.Count(log, "adopted pinned map")
		t.Logf("the current build adopted %d pinned maps", adopted)
		if migrates {
			line := ""
			for _, l := range strings.Split(log, "\n") {
				if strings.Contains(l, "migrated the older conntrack's flows") {
					line = l
				}
			}
			if line == "" {
				t.Errorf("the previous build's %s was not migrated (no log line)", bpf.MapConntrackV1)
			}
			if _, err := os.Stat(olderCT); !os.IsNotExist(err) {
				t.Errorf("the older conntrack is still pinned at %s (%v)", olderCT, err)
			}
			t.Logf("conntrack migration: %s", line)
		}
		if carries {
			checkCarriedCounters(t, lb1, log, countsBefore)
		}
	})
}

// checkCarriedCounters fails unless the current build on n logged carrying
// the older counter maps over, removed their pins, and no event or drop
// counter is below what the previous build had counted (before).
func checkCarriedCounters(t *testing.T, n *Node, log string, before Counters) {
	t.Helper()
	if !strings.Contains(log, "carried the older counters over") {
		t.Errorf("the previous build's counters were not carried over (no log line)")
	}
	for _, name := range []string{bpf.MapFamilyStatsV1, bpf.MapEventStatsV1, bpf.MapDropStatsV1} {
		if _, err := os.Stat(filepath.Join(n.pinPath(), "maps", name)); !os.IsNotExist(err) {
			t.Errorf("the older %s is still pinned (%v)", name, err)
		}
	}
	after, err := n.DataplaneCounters()
	if err != nil {
		t.Fatal(err)
	}
	var counted uint64
	for k, v := range before {
		counted += v
		if after[k] < v {
			t.Errorf("%s went backwards across the upgrade: %d, then %d", k, v, after[k])
		}
	}
	if counted == 0 {
		t.Errorf("the previous build counted nothing: the check above checked nothing")
	}
	t.Logf("counters carried over: %d counted before the upgrade, e.g. lb.hc_encap %d -> %d, lb.ct_hit %d -> %d",
		counted, before["lb.hc_encap"], after["lb.hc_encap"], before["lb.ct_hit"], after["lb.ct_hit"])
}

// logOf returns the node's whole aird log.
func logOf(t *testing.T, n *Node) string {
	t.Helper()
	b, err := os.ReadFile(n.proc.Log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
