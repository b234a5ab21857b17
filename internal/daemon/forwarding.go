package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// procSys is where the per-interface IP sysctls live.
const procSys = "/proc/sys/net"

// forwarding makes sure IPv4 and IPv6 forwarding is on for every uplink.
// bpf_fib_lookup answers "forwarding disabled" for an ingress interface
// with forwarding off, and the lb stage then drops what it would have
// forwarded; the kernel fallback (no neighbour yet) needs it as well. Only
// the uplinks are touched, not "all": forwarding on an interface stops the
// kernel from accepting Router Advertisements there unless accept_ra is 2,
// so an uplink whose accept_ra is 1 is moved to 2 to keep its RA-learned
// routes. With mode "keep" nothing is written; an uplink without
// forwarding is reported in the log.
type forwarding struct {
	log  *slog.Logger
	root string // procSys; tests point it elsewhere
}

func (f forwarding) apply(mode string, uplinks []string) error {
	var errs []error
	for _, dev := range uplinks {
		for _, fam := range []string{"ipv4", "ipv6"} {
			if err := f.uplink(mode, fam, dev); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (f forwarding) uplink(mode, family, dev string) error {
	dir := filepath.Join(f.root, family, "conf", dev)
	on, err := f.read(dir, "forwarding")
	if err != nil {
		return err
	}
	if family == "ipv6" {
		if err := f.forceIPv6(mode, dir, dev); err != nil {
			return err
		}
	}
	if on == "1" {
		return nil
	}
	if mode == "keep" {
		f.log.Warn("forwarding is off on an uplink: the load balancer cannot forward what arrives there (datapath.forwarding = \"keep\")",
			"uplink", dev, "family", family, "sysctl", dir+"/forwarding")
		return nil
	}
	if family == "ipv6" {
		if ra, err := f.read(dir, "accept_ra"); err == nil && ra == "1" {
			if err := f.write(dir, "accept_ra", "2"); err != nil {
				return err
			}
			f.log.Info("accept_ra 1 -> 2 so the uplink keeps accepting router advertisements with forwarding on", "uplink", dev)
		}
	}
	if err := f.write(dir, "forwarding", "1"); err != nil {
		return err
	}
	f.log.Info("forwarding enabled", "uplink", dev, "family", family)
	return nil
}

// forceIPv6 sets force_forwarding (Linux 6.17 and later) on an uplink: the
// kernel forwards IPv6 that arrives on an interface only when
// conf/all/forwarding is on or, with force_forwarding, for that interface
// alone - what the XDP stages hand it (unresolved neighbours, endpoints
// whose MAC is not known yet, hop limit 1) must be forwarded. Older
// kernels have no such switch; there IPv6 needs conf/all/forwarding.
func (f forwarding) forceIPv6(mode, dir, dev string) error {
	v, err := f.read(dir, "force_forwarding")
	if err != nil || v == "1" {
		return nil // no such sysctl before 6.17
	}
	if mode == "keep" {
		f.log.Warn("force_forwarding is off on an uplink: IPv6 the data plane leaves to the kernel is forwarded only with net.ipv6.conf.all.forwarding=1 (datapath.forwarding = \"keep\")",
			"uplink", dev, "sysctl", dir+"/force_forwarding")
		return nil
	}
	return f.write(dir, "force_forwarding", "1")
}

func (f forwarding) read(dir, key string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, key))
	if err != nil {
		return "", fmt.Errorf("read sysctl %s/%s: %w", dir, key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (f forwarding) write(dir, key, val string) error {
	if err := os.WriteFile(filepath.Join(dir, key), []byte(val), 0o644); err != nil {
		return fmt.Errorf("set sysctl %s/%s = %s (or set datapath.forwarding = \"keep\" and enable it yourself): %w", dir, key, val, err)
	}
	return nil
}
