// Command aird-probe exercises, one by one, the kernel interfaces aird needs
// (bpf(), bpffs pins, XDP attach over bpf_link and netlink, perf events, ring
// buffers, raw ICMPv6 and packet sockets, TCP port 179, rtnetlink, the API
// socket directory) and prints one line per check:
//
//	ok   NAME detail
//	FAIL NAME error
//	info NAME detail   (reported, never a failure)
//
// TestSystemdSandbox runs it inside a systemd-nspawn container as a service
// with exactly the [Service] sandbox of systemd/aird.service, so the unit's
// capability set and system call filter are proven sufficient independently
// of the daemon. It exits 1 when any check fails.
//
// It lives under testdata so that `go build ./...` and `go vet ./...` skip it;
// the test builds it explicitly.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/perf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var failed bool

func check(name string, fn func() (string, error)) {
	detail, err := fn()
	if err != nil {
		failed = true
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	fmt.Printf("ok   %s %s\n", name, detail)
}

func info(name string, fn func() (string, error)) {
	detail, err := fn()
	if err != nil {
		detail = "error: " + err.Error()
	}
	fmt.Printf("info %s %s\n", name, detail)
}

func main() {
	iface := "host0"
	pinDir := "/sys/fs/bpf/aird"
	if len(os.Args) > 1 {
		iface = os.Args[1]
	}

	info("caps", func() (string, error) {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return "", err
		}
		var caps []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Cap") || strings.HasPrefix(l, "NoNewPrivs") || strings.HasPrefix(l, "Seccomp:") {
				caps = append(caps, strings.Join(strings.Fields(l), ""))
			}
		}
		return strings.Join(caps, " "), nil
	})

	check("rlimit-remove-memlock", func() (string, error) { return "", rlimit.RemoveMemlock() })

	var hash *ebpf.Map
	check("bpf-map-create", func() (string, error) {
		var err error
		hash, err = ebpf.NewMap(&ebpf.MapSpec{Name: "probe_hash", Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 16})
		return "", err
	})

	check("bpffs-pin", func() (string, error) {
		if hash == nil {
			return "", errors.New("no map")
		}
		if err := os.MkdirAll(pinDir, 0o700); err != nil {
			return "", err
		}
		p := filepath.Join(pinDir, "probe_hash")
		if err := hash.Pin(p); err != nil {
			return "", err
		}
		m, err := ebpf.LoadPinnedMap(p, nil)
		if err != nil {
			return "", fmt.Errorf("reopen pin: %w", err)
		}
		m.Close()
		return p, hash.Unpin()
	})

	var prog *ebpf.Program
	check("bpf-prog-load-xdp", func() (string, error) {
		var err error
		prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
			Name: "probe_pass",
			Type: ebpf.XDP,
			// return XDP_PASS
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()},
			License:      "GPL",
		})
		return "", err
	})

	ifindex := 0
	check("rtnetlink-link-list", func() (string, error) {
		links, err := netlink.LinkList()
		if err != nil {
			return "", err
		}
		var names []string
		for _, l := range links {
			names = append(names, l.Attrs().Name)
			if l.Attrs().Name == iface {
				ifindex = l.Attrs().Index
			}
		}
		if ifindex == 0 {
			return "", fmt.Errorf("%s not found among %v", iface, names)
		}
		return strings.Join(names, ","), nil
	})

	for _, mode := range []struct {
		name  string
		flags link.XDPAttachFlags
	}{{"auto", 0}, {"native", link.XDPDriverMode}, {"generic", link.XDPGenericMode}} {
		check("xdp-bpf-link-"+mode.name, func() (string, error) {
			if prog == nil || ifindex == 0 {
				return "", errors.New("no program or interface")
			}
			l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: mode.flags})
			if err != nil {
				return "", err
			}
			defer l.Close()
			p := filepath.Join(pinDir, "probe_link")
			if err := l.Pin(p); err != nil {
				return "", fmt.Errorf("pin link: %w", err)
			}
			return "attached and pinned", l.Unpin()
		})
	}

	check("xdp-netlink-generic", func() (string, error) {
		if prog == nil || ifindex == 0 {
			return "", errors.New("no program or interface")
		}
		l, err := netlink.LinkByIndex(ifindex)
		if err != nil {
			return "", err
		}
		if err := netlink.LinkSetXdpFdWithFlags(l, prog.FD(), unix.XDP_FLAGS_SKB_MODE); err != nil {
			return "", err
		}
		l, err = netlink.LinkByIndex(ifindex)
		if err != nil {
			return "", err
		}
		id := uint32(0)
		if x := l.Attrs().Xdp; x != nil {
			id = x.ProgId
		}
		// Looking a program up by ID (what `bpftool` and a restarted daemon
		// that did not pin its program would do) is gated on CAP_SYS_ADMIN.
		info("bpf-prog-get-fd-by-id", func() (string, error) {
			p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
			if err != nil {
				return "", err
			}
			p.Close()
			return fmt.Sprintf("id %d reopened", id), nil
		})
		if err := netlink.LinkSetXdpFdWithFlags(l, -1, unix.XDP_FLAGS_SKB_MODE); err != nil {
			return "", fmt.Errorf("detach: %w", err)
		}
		return fmt.Sprintf("prog id %d", id), nil
	})

	check("perf-event-array-reader", func() (string, error) {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerfEventArray})
		if err != nil {
			return "", err
		}
		defer m.Close()
		r, err := perf.NewReader(m, os.Getpagesize())
		if err != nil {
			return "", err
		}
		return "perf_event_open on every CPU", r.Close()
	})

	check("ringbuf-reader", func() (string, error) {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096})
		if err != nil {
			return "", err
		}
		defer m.Close()
		r, err := ringbuf.NewReader(m)
		if err != nil {
			return "", err
		}
		return "", r.Close()
	})

	check("raw-icmpv6-socket", func() (string, error) {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ICMPV6)
		if err != nil {
			return "", err
		}
		return "", unix.Close(fd)
	})

	check("packet-socket", func() (string, error) {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return "", err
		}
		return "", unix.Close(fd)
	})

	check("tcp-listen-179", func() (string, error) {
		l, err := net.Listen("tcp", "[::]:179")
		if err != nil {
			return "", err
		}
		return "", l.Close()
	})

	check("unix-socket-runtime-dir", func() (string, error) {
		p := "/run/aird/probe.sock"
		l, err := net.Listen("unix", p)
		if err != nil {
			return "", err
		}
		defer l.Close()
		st, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("mode %o", st.Mode().Perm()), nil
	})

	check("state-dir-writable", func() (string, error) {
		p := "/var/lib/aird/probe"
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			return "", err
		}
		return "", os.Remove(p)
	})

	check("etc-read-only", func() (string, error) {
		err := os.WriteFile("/etc/aird/probe", []byte("x"), 0o600)
		if err == nil {
			os.Remove("/etc/aird/probe")
			return "", errors.New("/etc/aird is writable: ProtectSystem=strict not in effect")
		}
		return err.Error(), nil
	})

	info("sysctl-write", func() (string, error) {
		err := os.WriteFile("/proc/sys/net/ipv6/conf/"+iface+"/forwarding", []byte("1"), 0)
		if err != nil {
			return "", err
		}
		return "writable", nil
	})

	if prog != nil {
		prog.Close()
	}
	if hash != nil {
		hash.Close()
	}
	os.Remove(pinDir)
	if failed {
		fmt.Println("RESULT FAIL")
		os.Exit(1)
	}
	fmt.Println("RESULT OK")
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
