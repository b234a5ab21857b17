package bpf

import (
	"fmt"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"
)

// String returns the stat name of a drop reason, e.g. "no_backend": the C
// enumerator's name (from the object's BTF) without its prefix, lower case.
func (r DatapathDropReason) String() string {
	if n, ok := enumNames()["drop_reason"][uint64(r)]; ok {
		return n
	}
	return fmt.Sprintf("drop_reason(%d)", uint32(r))
}

// DropReasons returns every drop reason in index order.
func DropReasons() []DatapathDropReason {
	out := make([]DatapathDropReason, 0, DatapathDropReasonDROP_MAX)
	for r := DatapathDropReason(0); r < DatapathDropReasonDROP_MAX; r++ {
		out = append(out, r)
	}
	return out
}

// String returns the stat name of an LB event counter, e.g. "ct_hit".
func (s DatapathLbStat) String() string {
	if n, ok := enumNames()["lb_stat"][uint64(s)]; ok {
		return n
	}
	return fmt.Sprintf("lb_stat(%d)", uint32(s))
}

// LBStats returns every LB event counter in index order.
func LBStats() []DatapathLbStat {
	out := make([]DatapathLbStat, 0, DatapathLbStatLB_STAT_MAX)
	for s := DatapathLbStat(0); s < DatapathLbStatLB_STAT_MAX; s++ {
		out = append(out, s)
	}
	return out
}

// String returns the stat name of a router event counter, e.g. "delivered".
func (s DatapathRouterStat) String() string {
	if n, ok := enumNames()["router_stat"][uint64(s)]; ok {
		return n
	}
	return fmt.Sprintf("router_stat(%d)", uint32(s))
}

// enumNames reads the enumerator names of drop_reason and lb_stat from the
// embedded object's BTF, so the names follow the C enums without a second
// list: DROP_NO_BACKEND is "no_backend", LB_STAT_CT_HIT "ct_hit".
var enumNames = sync.OnceValue(func() map[string]map[uint64]string {
	out := map[string]map[uint64]string{}
	spec, err := LoadDatapath()
	if err != nil {
		return out
	}
	for name, prefix := range map[string]string{"drop_reason": "DROP_", "lb_stat": "LB_STAT_", "router_stat": "ROUTER_STAT_"} {
		var e *btf.Enum
		if err := spec.Types.TypeByName(name, &e); err != nil {
			continue
		}
		m := map[uint64]string{}
		for _, v := range e.Values {
			if strings.HasSuffix(v.Name, "_MAX") {
				continue
			}
			m[v.Value] = strings.ToLower(strings.TrimPrefix(v.Name, prefix))
		}
		out[name] = m
	}
	return out
})
