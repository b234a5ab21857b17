package bgp

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// hint suggests what to check for a peer whose session does not come up.
// A TCP MD5 mismatch (or a key on one side only) is silent: the kernels
// drop the segments, neither BGP speaker sees a connection or logs an
// error, and the session sits in connect/active. So a peer with a password
// whose session never got past TCP for a connect-retry interval gets a
// hint, with the kernel's MD5 drop counters of this network namespace.
func hint(p peer, rt peerRuntime, state string, now time.Time) string {
	if p.session.password == "" || !p.resolved() || rt.up || now.Before(rt.retryAt) {
		return ""
	}
	switch state {
	case "idle", "connect", "active":
	default:
		return ""
	}
	wait := time.Duration(max(p.session.connectRetry, 1)) * time.Second
	if now.Sub(rt.changed) < wait {
		return ""
	}
	h := "TCP MD5 is configured and no BGP OPEN came through: a different key on the peer (or a key on one side only) makes both kernels drop the segments silently; compare the keys"
	if c, err := md5Counters("/proc/self/net/netstat"); err == nil {
		h += fmt.Sprintf(" (this node's kernel dropped %d segments with a wrong MD5 signature and %d without one, since boot: TcpExt TCPMD5Failure, TCPMD5NotFound)",
			c["TCPMD5Failure"], c["TCPMD5NotFound"])
	}
	return h
}

// md5Counters reads the TCP MD5 counters from a /proc/net/netstat file.
func md5Counters(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var names []string
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "TcpExt:" {
			continue
		}
		if names == nil {
			names = fields[1:]
			continue
		}
		for i, v := range fields[1:] {
			if i < len(names) && strings.HasPrefix(names[i], "TCPMD5") {
				out[names[i]], _ = strconv.ParseUint(v, 10, 64)
			}
		}
		return out, nil
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s: no TcpExt counters", path)
}
