package datapath

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// ensureBPFFS mounts a bpf filesystem on /sys/fs/bpf when there is none, as
// other BPF daemons do: `ip netns exec` gives its command a fresh /sys
// (sysfs of the target namespace) without the host's bpffs. A bpffs mounted
// there propagates nowhere and lives only as long as the mount namespace:
// when aird exits, its pins, and so its XDP links, go away with it; the
// warning says so. In the host's mount namespace the mount is what systemd
// does at boot and outlives aird.
//
// private reports that aird mounted the bpffs in a private mount namespace.
func ensureBPFFS(log *slog.Logger) (private bool, err error) {
	if checkBPFFS(bpffsRoot) == nil {
		return false, nil
	}
	if err := unix.Mount("bpf", bpffsRoot, "bpf", 0, "mode=0700"); err != nil {
		return false, fmt.Errorf("%s is not a bpf filesystem, and mounting one failed: %w "+
			"(mount -t bpf bpf %[1]s; under `ip netns exec`, which remounts /sys, mounting needs CAP_SYS_ADMIN, "+
			"or start aird with nsenter --net=/run/netns/NAME to keep the host's bpffs)", bpffsRoot, err)
	}
	if privateMount(bpffsRoot) {
		private = true
		log.Warn("mounted a bpf filesystem on "+bpffsRoot+" in this process's private mount namespace "+
			"(ip netns exec remounts /sys): the pins live only as long as aird, so the data plane detaches when aird "+
			"exits and a restart starts afresh; start aird with nsenter --net=/run/netns/NAME to pin in the host's bpffs",
			"path", bpffsRoot)
	} else {
		log.Info("mounted a bpf filesystem", "path", bpffsRoot)
	}
	return private, nil
}

// PinsOutliveProcess reports whether the pins, and so the attached data
// plane, stay after aird exits: false when aird mounted the bpffs itself in
// a private mount namespace (ip netns exec).
func (d *Datapath) PinsOutliveProcess() bool { return !d.privateBPFFS }

// privateMount reports whether the mount at path propagates to no other
// mount namespace (no "shared:N" tag in /proc/self/mountinfo): then it
// lives only as long as this namespace. ip netns exec's /sys is such a
// mount; systemd's mounts in the host namespace are shared.
func privateMount(path string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	private := false
	for _, line := range strings.Split(string(data), "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
		f := strings.Fields(line)
		if len(f) < 7 || f[4] != path {
			continue
		}
		private = true // the last mount on path is the visible one
		for _, opt := range f[6:] {
			if opt == "-" {
				break
			}
			if strings.HasPrefix(opt, "shared:") {
				private = false
			}
		}
	}
	return private
}

// BPFFSMounted reports whether /sys/fs/bpf is a bpf filesystem in this
// mount namespace (it is not under `ip netns exec`, which remounts /sys).
func BPFFSMounted() bool { return checkBPFFS(bpffsRoot) == nil }
