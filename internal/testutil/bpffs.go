package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// BPFFSRoot is where aird expects the BPF filesystem.
const BPFFSRoot = "/sys/fs/bpf"

// RequireBPFFS makes sure a bpffs is mounted at /sys/fs/bpf, mounting one
// when the directory exists but holds no bpffs (as in bare containers). The
// mount is left in place for later tests. It is unavailable (skip, or fail
// with AIRD_TEST_PRIVILEGED=1) when neither works.
func RequireBPFFS(t testing.TB) {
	t.Helper()
	RequirePrivileged(t)
	if isBPFFS(BPFFSRoot) {
		return
	}
	out, err := exec.Command("mount", "-t", "bpf", "bpf", BPFFSRoot).CombinedOutput()
	if err != nil || !isBPFFS(BPFFSRoot) {
		Unavailable(t, "no bpffs at "+BPFFSRoot+" and mounting one failed: "+string(out))
	}
}

// TempPinPath returns a fresh, not yet existing directory name under
// /sys/fs/bpf (aird-test-<random>) for pinning. It removes whatever is left
// there when the test ends; callers that attach links should still tear
// them down first.
func TempPinPath(t testing.TB) string {
	t.Helper()
	RequireBPFFS(t)
	p := filepath.Join(BPFFSRoot, UniqueName("aird-test-"))
	t.Cleanup(func() { _ = os.RemoveAll(p) })
	return p
}

func isBPFFS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return uint32(st.Type) == uint32(unix.BPF_FS_MAGIC)
}
