package version

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestStampedOverridesBuildInfo(t *testing.T) {
	base := Info{Version: "devel", Revision: "abc", GoVersion: "go1.26.8"}
	if got := stamped(base, "", ""); got != base {
		t.Fatalf("no stamp changed the info: %+v", got)
	}
	got := stamped(base, "v1.2.3", "0123456789abcdef0123")
	if got.Version != "v1.2.3" || got.Revision != "0123456789abcdef0123" {
		t.Fatalf("stamp not applied: %+v", got)
	}
	if s := got.String(); s != "v1.2.3 (rev 0123456789ab, go1.26.8)" {
		t.Fatalf("String() = %q", s)
	}
}

// TestBuildID: the running test binary has the Go linker's build id
// (what `go tool buildid` prints), a file that is not ELF has none.
func TestBuildID(t *testing.T) {
	id := BuildID()
	if len(id) < 20 || strings.Count(id, "/") < 1 {
		t.Fatalf("build id %q", id)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "tool", "buildid", exe).Output()
	if err != nil {
		t.Fatalf("go tool buildid: %v", err)
	}
	if want := strings.TrimSpace(string(out)); id != want {
		t.Fatalf("build id %q, go tool buildid says %q", id, want)
	}
	if id := buildID("version_test.go"); id != "" {
		t.Fatalf("a Go source file has build id %q", id)
	}
}
