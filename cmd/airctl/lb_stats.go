package main

import (
	"fmt"
	"net/url"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aird-net/aird/internal/api"
)

func (c *cli) lbStatsCommand() *cobra.Command {
	var vip string
	cmd := &cobra.Command{
		Use:   "stats [--vip VIP]",
		Short: "Show the data plane's load-balancer events, drops and traffic per VIP (summed over CPUs)",
		Long: `Show the data plane's load-balancer counters, summed over CPUs: events
(conntrack, tx/redirect, too-big, decap), drops by reason, and the packets
and bytes load-balanced per service (VIP, port, protocol).

--vip narrows the output to one VIP and adds its backends' packets and
bytes; the node-wide events and drops are left out. VIP is an address, or
ADDRESS:PORT/PROTO ([IPv6]:PORT/PROTO) for one of its services.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := "/v1/lb/stats"
			if cmd.Flags().Changed("vip") {
				sel, err := api.ParseVIPSelector(vip)
				if err != nil {
					return usageError{err}
				}
				path += "?" + url.Values{"vip": {sel.String()}}.Encode()
			}
			var st api.LBStats
			if err := c.client().Do(cmd.Context(), "GET", path, nil, &st); err != nil {
				return err
			}
			if c.json() {
				return writeJSON(c.stdout, st)
			}
			return printLBStats(c, st, cmd.Flags().Changed("vip"))
		},
	}
	cmd.Flags().StringVar(&vip, "vip", "", "only this VIP (ADDRESS or ADDRESS:PORT/PROTO), with its backends")
	return cmd
}

func printLBStats(c *cli, st api.LBStats, oneVIP bool) error {
	if !oneVIP {
		w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "KIND\tNAME\tCOUNT")
		for _, kind := range []struct {
			name string
			m    map[string]uint64
		}{{"event", st.Events}, {"drop", st.Drops}} {
			for _, k := range sortedKeys(kind.m) {
				fmt.Fprintf(w, "%s\t%s\t%d\n", kind.name, k, kind.m[k])
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(c.stdout)
	}
	w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tVIP\tPORT\tPROTO\tPACKETS\tBYTES")
	for _, s := range st.Services {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\n", s.Name, s.VIP, portText(s.Port), s.Protocol, s.Packets, s.Bytes)
	}
	if err := w.Flush(); err != nil || !oneVIP {
		return err
	}
	fmt.Fprintln(c.stdout)
	w = tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tBACKEND\tPACKETS\tBYTES")
	for _, s := range st.Services {
		for _, b := range s.Backends {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", s.Name, b.Address, b.Packets, b.Bytes)
		}
	}
	return w.Flush()
}

// countText prints a counter, or "-" when there is none.
func countText(v *uint64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprint(*v)
}
