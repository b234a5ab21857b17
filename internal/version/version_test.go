package version

import "testing"

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
