package bgp

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// gracefulShutdown is GRACEFUL_SHUTDOWN (RFC 8326), 65535:0, which drained
// routes carry.
const gracefulShutdown = 0xffff0000

// wellKnownCommunities maps the names config accepts to their values
// (RFC 1997, RFC 3765, RFC 7999, RFC 8326).
var wellKnownCommunities = map[string]uint32{
	"graceful-shutdown":   gracefulShutdown,
	"blackhole":           0xffff029a,
	"no-export":           0xffffff01,
	"no-advertise":        0xffffff02,
	"no-export-subconfed": 0xffffff03,
	"no-peer":             0xffffff04,
}

// parseCommunity parses "ASN:VALUE" (16 bits each) or a well-known name.
func parseCommunity(s string) (uint32, error) {
	if v, ok := wellKnownCommunities[s]; ok {
		return v, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	if ok {
		a, err1 := strconv.ParseUint(hi, 10, 16)
		b, err2 := strconv.ParseUint(lo, 10, 16)
		if err1 == nil && err2 == nil {
			return uint32(a)<<16 | uint32(b), nil
		}
	}
	return 0, fmt.Errorf("invalid community %q: use \"65000:100\" or a well-known name", s)
}

// parseCommunities parses, sorts and de-duplicates communities.
func parseCommunities(list ...[]string) ([]uint32, error) {
	var out []uint32
	for _, l := range list {
		for _, s := range l {
			v, err := parseCommunity(s)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// largeCommunity is an RFC 8092 large community.
type largeCommunity struct{ ASN, Data1, Data2 uint32 }

func (c largeCommunity) String() string {
	return fmt.Sprintf("%d:%d:%d", c.ASN, c.Data1, c.Data2)
}

func parseLargeCommunity(s string) (largeCommunity, error) {
	parts := strings.Split(s, ":")
	if len(parts) == 3 {
		var v [3]uint32
		ok := true
		for i, p := range parts {
			n, err := strconv.ParseUint(p, 10, 32)
			ok = ok && err == nil
			v[i] = uint32(n)
		}
		if ok {
			return largeCommunity{v[0], v[1], v[2]}, nil
		}
	}
	return largeCommunity{}, fmt.Errorf("invalid large community %q: use \"4200000000:1:2\"", s)
}

// parseLargeCommunities parses, sorts and de-duplicates large communities.
func parseLargeCommunities(list ...[]string) ([]largeCommunity, error) {
	var out []largeCommunity
	for _, l := range list {
		for _, s := range l {
			c, err := parseLargeCommunity(s)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	slices.SortFunc(out, compareLarge)
	return slices.Compact(out), nil
}

func compareLarge(a, b largeCommunity) int {
	switch {
	case a.ASN != b.ASN:
		return compareU32(a.ASN, b.ASN)
	case a.Data1 != b.Data1:
		return compareU32(a.Data1, b.Data1)
	}
	return compareU32(a.Data2, b.Data2)
}

func compareU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// communityString renders a community as "ASN:VALUE".
func communityString(v uint32) string {
	return fmt.Sprintf("%d:%d", v>>16, v&0xffff)
}

func toGoBGPLarge(cs []largeCommunity) []*gobgp.LargeCommunity {
	out := make([]*gobgp.LargeCommunity, len(cs))
	for i, c := range cs {
		out[i] = gobgp.NewLargeCommunity(c.ASN, c.Data1, c.Data2)
	}
	return out
}
