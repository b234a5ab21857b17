package lab

import (
	"strings"
	"testing"
	"time"

	"github.com/aird-net/aird/internal/testutil"
)

// TestNodeStartReturnsOnExit: a node whose aird exits before its API
// answers (here on a configuration it refuses) makes Start return at once
// - not after its 30 s wait - with the exit status and aird's last words.
func TestNodeStartReturnsOnExit(t *testing.T) {
	testutil.RequirePrivileged(t)
	testutil.RequireCommand(t, "nsenter")
	aird, airctl := testutil.Binaries(t)
	l := &Lab{ID: newID(), Dir: t.TempDir(), opts: Options{Aird: aird, Airctl: airctl}}
	n := &Node{Name: "bad", Role: RoleLB, Index: 1, NS: testutil.NewNetns(t, "alstart-"), lab: l}
	if err := n.WriteConfigText("[node]\nname = \"bad\"\nno-such-key = 1\n"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	err := n.Start()
	took := time.Since(began)
	if err == nil {
		n.proc.Kill()
		t.Fatal("aird started with an unknown key in its configuration")
	}
	t.Logf("after %s: %v", took.Round(time.Millisecond), err)
	if took > 15*time.Second {
		t.Errorf("Start took %s to notice that aird had exited", took.Round(time.Millisecond))
	}
	for _, want := range []string{"exit status 1", n.Config() + ":", "no-such-key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q: %v", want, err)
		}
	}
}
