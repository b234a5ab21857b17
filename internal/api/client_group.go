package api

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// socketGroup names the group that may use the socket at path: the socket's
// group when it grants that group read and write, else that of the
// directory holding it (when the caller cannot even look inside). "" when
// no group other than root's is granted access.
func socketGroup(path string) string {
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || st.Gid == 0 {
			return ""
		}
		want := os.FileMode(0o060) // rw for the socket
		if fi.IsDir() {
			want = 0o010 // x for its directory
		}
		if fi.Mode().Perm()&want != want {
			return ""
		}
		id := strconv.FormatUint(uint64(st.Gid), 10)
		if g, err := user.LookupGroupId(id); err == nil {
			return g.Name
		}
		return id
	}
	return ""
}
