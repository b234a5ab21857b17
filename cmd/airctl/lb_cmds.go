package main

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aird-net/aird/internal/api"
)

func (c *cli) lbCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "lb", Short: "Load balancer: services, backends, stats, drain"}
	cmd.AddCommand(c.lbServicesCommand(), c.lbBackendsCommand(), c.lbStatsCommand())
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

func (c *cli) lbServicesCommand() *cobra.Command {
	var sel string
	var limit int
	cmd := &cobra.Command{
		Use:   "services [VIP|SERVICE]",
		Short: "Show services: serving (advertised), usable backends, traffic",
		Long: `Show every service (or those of one VIP, or one service): whether its VIP
is serving (advertised), how many of its backends take new flows, and the
packets and bytes load-balanced for it. VIP is an address, or
ADDRESS:PORT/PROTO ([IPv6]:PORT/PROTO) for one of its services. --limit
shows the first N only; the daemon answers in pages, so thousands of
services are fine.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				sel = args[0]
			}
			q, err := serviceQuery(sel)
			if err != nil {
				return err
			}
			ss, err := c.lbServicePages(cmd.Context(), q, limit)
			if err != nil || c.json() {
				return errOrJSON(c, err, ss)
			}
			if sel != "" && len(ss) == 0 {
				return fmt.Errorf("no service or VIP %q", sel)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tVIP\tPORT\tPROTO\tSERVING\tUSABLE\tPACKETS\tBYTES")
			for _, s := range ss {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", s.Name, s.VIP, portText(s.Port), s.Protocol, yesNo(s.Serving),
					s.Usable, s.Total, countText(s.Packets), countText(s.Bytes))
			}
			return w.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most this many services (0: all)")
	return cmd
}

func (c *cli) lbBackendsCommand() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "backends [VIP|SERVICE]",
		Short: "Show backends with weight, drain, health and traffic (VIP: ADDRESS or ADDRESS:PORT/PROTO)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sel := ""
			if len(args) == 1 {
				sel = args[0]
			}
			q, err := serviceQuery(sel)
			if err != nil {
				return err
			}
			q.Backends = true
			ss, err := c.lbServicePages(cmd.Context(), q, limit)
			if err == nil && sel != "" && len(ss) == 0 {
				err = fmt.Errorf("no service or VIP %q", sel)
			}
			if err != nil || c.json() {
				return errOrJSON(c, err, ss)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "SERVICE\tBACKEND\tWEIGHT\tDRAINED\tHEALTHY\tPROBES\tCHECKS\tFAILURES\tPACKETS\tBYTES\tLAST ERROR")
			for _, s := range ss {
				for _, b := range s.Backends {
					fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", s.Name, b.Address, b.Weight, yesNo(b.Drained),
						healthText(b.Health), probePath(b.Health.Via, b.Health.Fallback), b.Health.Checks, b.Health.Failures,
						countText(b.Packets), countText(b.Bytes), b.Health.LastError)
				}
			}
			return w.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "show the backends of at most this many services (0: all)")
	return cmd
}

// serviceQuery selects by VIP (api.ParseVIPSelector) or, failing that, by
// service name.
func serviceQuery(sel string) (api.LBServiceQuery, error) {
	if sel == "" {
		return api.LBServiceQuery{}, nil
	}
	if v, err := api.ParseVIPSelector(sel); err == nil {
		return api.LBServiceQuery{VIP: &v}, nil
	}
	return api.LBServiceQuery{Name: sel}, nil
}

// lbPage is how many services airctl asks for at a time: a page of
// services with 100 backends each is a few megabytes.
const lbPage = 500

// lbServicePages reads the services q selects, a page at a time, at most
// limit of them (0: all).
func (c *cli) lbServicePages(ctx context.Context, q api.LBServiceQuery, limit int) ([]api.LBService, error) {
	out := []api.LBService{}
	for {
		q.Limit = lbPage
		if limit > 0 {
			q.Limit = min(lbPage, limit-len(out))
		}
		var l api.LBServiceList
		if err := c.client().Do(ctx, "GET", "/v1/lb/services?"+q.Values().Encode(), nil, &l); err != nil {
			return nil, err
		}
		out = append(out, l.Services...)
		if l.Next == "" || (limit > 0 && len(out) >= limit) {
			return out, nil
		}
		q.After = l.Next
	}
}

// healthText is a backend's health: yes, no, or pending (after a restart,
// until its health is decided again).
func healthText(h api.LBHealth) string {
	if h.Checked && !h.Known {
		return "pending"
	}
	return yesNo(h.Healthy)
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
