package version

import (
	"runtime"
	"runtime/debug"
)

// Set at link time by the Makefile:
//
//	-ldflags "-X github.com/aird-net/aird/internal/version.version=v0.1.0
//	          -X github.com/aird-net/aird/internal/version.revision=<sha>"
//
// They are package variables only because -X can set nothing else.
var (
	version  string
	revision string
)

// Info describes a build.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go_version"`
}

// Get returns the build information of the running binary.
func Get() Info {
	info := Info{Version: "devel", GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			info.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	return stamped(info, version, revision)
}

// stamped overrides info with the link-time values, when there are any.
func stamped(info Info, v, rev string) Info {
	if v != "" {
		info.Version = v
	}
	if rev != "" {
		info.Revision = rev
	}
	return info
}

// String is a one-line summary: "v0.1.0 (rev 1a2b3c4d, go1.26.8)".
func (i Info) String() string {
	s := i.Version + " ("
	if i.Revision != "" {
		r := i.Revision
		if len(r) > 12 {
			r = r[:12]
		}
		s += "rev " + r
		if i.Modified {
			s += "+modified"
		}
		s += ", "
	}
	return s + i.GoVersion + ")"
}
