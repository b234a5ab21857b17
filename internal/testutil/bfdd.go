package testutil

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// StartBFDd runs FRR's bfdd next to the zebra and bgpd of f (started by
// StartFRR in ns), with conf as its configuration (bfd profiles), its own
// control socket and no vty TCP port. bgpd's `neighbor X bfd` sessions
// reach it through zebra. It is killed when the test ends.
func (f *FRR) StartBFDd(t testing.TB, ns, conf string) *Proc {
	t.Helper()
	bin := filepath.Join(FRRDir, "bfdd")
	if _, err := os.Stat(bin); err != nil {
		Unavailable(t, "FRR's bfdd not installed (apt-get install frr): "+err.Error())
	}
	u, err := user.Lookup("frr")
	if err != nil {
		Unavailable(t, "no frr user (apt-get install frr): "+err.Error())
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cfg := writeFile(t, f.Dir, "bfdd.conf", conf)
	if err := os.Chown(cfg, uid, gid); err != nil {
		t.Fatalf("chown %s: %v", cfg, err)
	}
	p := StartProc(t, filepath.Join(f.Dir, "bfdd.log"), "ip", FRRDaemonArgs(ns, f.Dir, "bfdd", cfg)...)
	f.waitSocket(t, "bfdd.vty", p)
	return p
}
