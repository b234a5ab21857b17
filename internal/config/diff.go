package config

import "reflect"

// Section names, as used by Diff and in logs.
const (
	SectionNode     = "node"
	SectionDatapath = "datapath"
	SectionBGP      = "bgp"
	SectionIPAM     = "ipam"
	SectionLB       = "lb"
	SectionServices = "services"
	SectionAPI      = "api"
	SectionMetrics  = "metrics"
	SectionLog      = "log"
)

type section struct {
	name  string
	value any
}

func (c *Config) sections() []section {
	return []section{
		{SectionNode, c.Node}, {SectionDatapath, c.Datapath}, {SectionBGP, c.BGP},
		{SectionIPAM, c.IPAM}, {SectionLB, c.LB}, {SectionServices, c.Services},
		{SectionAPI, c.API}, {SectionMetrics, c.Metrics}, {SectionLog, c.Log},
	}
}

// Diff returns the sections whose settings differ between a and b, in
// schema order. A nil a counts as "everything changed".
func Diff(a, b *Config) []string {
	sb := b.sections()
	var out []string
	if a == nil {
		for _, s := range sb {
			out = append(out, s.name)
		}
		return out
	}
	sa := a.sections()
	for i := range sb {
		if !reflect.DeepEqual(sa[i].value, sb[i].value) {
			out = append(out, sb[i].name)
		}
	}
	return out
}
