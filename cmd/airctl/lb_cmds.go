package main

import (
	"fmt"
	"net/netip"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/lb"
)

func (c *cli) lbCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "lb", Short: "Load balancer: services, backends, stats, drain"}
	cmd.AddCommand(&cobra.Command{
		Use:   "services",
		Short: "Show services and whether their VIP is serving (advertised)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ss, err := c.services(cmd)
			if err != nil || c.json() {
				return errOrJSON(c, err, ss)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tVIP\tPORT\tPROTO\tSERVING\tHEALTHY")
			for _, s := range ss {
				healthy := 0
				for _, b := range s.Backends {
					if b.Health.Healthy && b.Weight > 0 && !b.Drained {
						healthy++
					}
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d/%d\n", s.Name, s.VIP, portText(s.Port), s.Protocol, yesNo(s.Serving), healthy, len(s.Backends))
			}
			return w.Flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "backends [VIP|SERVICE]",
		Short: "Show backends with weight, drain, health and traffic (VIP: ADDRESS or ADDRESS:PORT/PROTO)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ss, err := c.services(cmd)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				ss = filterServices(ss, args[0])
				if len(ss) == 0 {
					return fmt.Errorf("no service or VIP %q", args[0])
				}
			}
			vs, err := c.withTraffic(cmd, ss)
			if err != nil || c.json() {
				return errOrJSON(c, err, vs)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "SERVICE\tBACKEND\tWEIGHT\tDRAINED\tHEALTHY\tPROBES\tCHECKS\tFAILURES\tPACKETS\tBYTES\tLAST ERROR")
			for _, s := range vs {
				for _, b := range s.Backends {
					fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", s.Name, b.Address, b.Weight, yesNo(b.Drained),
						yesNo(b.Health.Healthy), probePath(b.Health.Via, b.Health.Fallback), b.Health.Checks, b.Health.Failures,
						countText(b.Packets), countText(b.Bytes), b.Health.LastError)
				}
			}
			return w.Flush()
		},
	})
	cmd.AddCommand(c.lbStatsCommand())
	for _, drain := range []bool{true, false} {
		use, short := "drain SERVICE BACKEND", "Stop new flows to a backend; established flows keep it"
		if !drain {
			use, short = "undrain SERVICE BACKEND", "Let a drained backend take new flows again"
		}
		cmd.AddCommand(&cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				addr, err := netip.ParseAddr(args[1])
				if err != nil {
					return usagef("backend %q is not an address", args[1])
				}
				req := api.LBDrain{Service: args[0], Backend: addr, Drained: drain}
				return c.client().Do(cmd.Context(), "POST", "/v1/lb/drain", req, nil)
			},
		})
	}
	return cmd
}

func (c *cli) services(cmd *cobra.Command) ([]lb.ServiceStatus, error) {
	var ss []lb.ServiceStatus
	err := c.client().Do(cmd.Context(), "GET", "/v1/lb/services", nil, &ss)
	return ss, err
}

// filterServices picks services by name or by VIP (api.ParseVIPSelector).
func filterServices(ss []lb.ServiceStatus, sel string) []lb.ServiceStatus {
	vip, vipErr := api.ParseVIPSelector(sel)
	var out []lb.ServiceStatus
	for _, s := range ss {
		if s.Name == sel || (vipErr == nil && vip.Matches(s.VIP, s.Port, s.Protocol)) {
			out = append(out, s)
		}
	}
	return out
}

func portText(p int) string {
	if p == 0 {
		return "any"
	}
	return fmt.Sprint(p)
}

func errOrJSON(c *cli, err error, v any) error {
	if err != nil {
		return err
	}
	return writeJSON(c.stdout, v)
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// probePath says how a backend is probed: "tunnel", "direct", or
// "direct (why)" when a tunnelled check fell back; "-" without checks.
func probePath(via, fallback string) string {
	switch {
	case via == "":
		return "-"
	case fallback != "":
		return via + " (" + fallback + ")"
	}
	return via
}
