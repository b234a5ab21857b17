package main

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/ipam"
)

func (c *cli) ipamCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "ipam", Short: "Address management: pools and allocations"}
	cmd.AddCommand(&cobra.Command{
		Use:   "pools",
		Short: "Show the pools with their prefixes on this node, size and use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ps []ipam.PoolStatus
			err := c.client().Do(cmd.Context(), "GET", "/v1/ipam/pools", nil, &ps)
			if err != nil || c.json() {
				return errOrJSON(c, err, ps)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "POOL\tKIND\tPREFIXES\tSIZE\tUSED IPV6\tUSED IPV4")
			for _, p := range ps {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\n", p.Name, p.Kind, prefixList(p.Prefixes), p.Size, p.Used[ipam.IPv6], p.Used[ipam.IPv4])
			}
			return w.Flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "allocations [POOL]",
		Short: "Show the allocations (of one pool) with their owners",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/v1/ipam/allocations"
			if len(args) == 1 {
				path += "?pool=" + url.QueryEscape(args[0])
			}
			var as []ipam.Allocation
			err := c.client().Do(cmd.Context(), "GET", path, nil, &as)
			if err != nil || c.json() {
				return errOrJSON(c, err, as)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "POOL\tADDRESS\tOWNER\tKIND\tHOW\tCREATED")
			for _, a := range as {
				how := "allocated"
				if a.Reserved {
					how = "reserved"
				}
				if a.Orphan {
					how += " (orphan: no pool holds it)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Pool, a.Addr, a.Owner, a.Kind, how, a.Created.Format("2006-01-02T15:04:05Z"))
			}
			return w.Flush()
		},
	})
	cmd.AddCommand(c.ipamAllocateCommand(), c.ipamReserveCommand(), c.ipamReleaseCommand())
	return cmd
}

func (c *cli) ipamAllocateCommand() *cobra.Command {
	var req api.IPAMAllocate
	var family, kind string
	cmd := &cobra.Command{
		Use:   "allocate OWNER",
		Short: "Allocate an address for OWNER (idempotent: the same owner gets the same address)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Owner, req.Family, req.Kind = args[0], ipam.Family(family), ipam.Kind(kind)
			if req.Pool != "" && cmd.Flags().Changed("kind") {
				return fmt.Errorf("give --pool or --kind, not both")
			}
			if req.Pool != "" {
				req.Kind = ""
			}
			var al ipam.Allocation
			err := c.client().Do(cmd.Context(), "POST", "/v1/ipam/allocate", req, &al)
			return c.printAllocations(err, []ipam.Allocation{al})
		},
	}
	cmd.Flags().StringVar(&family, "family", "ipv6", "address family: ipv6 or ipv4")
	cmd.Flags().StringVar(&req.Pool, "pool", "", "pool name")
	cmd.Flags().StringVar(&kind, "kind", "pod", "pool kind when no --pool: pod, vm or service")
	return cmd
}

func (c *cli) ipamReserveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "reserve OWNER ADDRESS",
		Short: "Record ADDRESS (inside a pool) as held by OWNER, so it is never allocated",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := netip.ParseAddr(args[1])
			if err != nil {
				return fmt.Errorf("%q is not an address", args[1])
			}
			var al ipam.Allocation
			err = c.client().Do(cmd.Context(), "POST", "/v1/ipam/reserve", api.IPAMReserve{Owner: args[0], Address: addr}, &al)
			return c.printAllocations(err, []ipam.Allocation{al})
		},
	}
}

func (c *cli) ipamReleaseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "release OWNER",
		Short: "Release every address OWNER holds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var as []ipam.Allocation
			err := c.client().Do(cmd.Context(), "POST", "/v1/ipam/release", api.IPAMRelease{Owner: args[0]}, &as)
			if err == nil && !c.json() && len(as) == 0 {
				fmt.Fprintf(c.stdout, "%s held no address\n", args[0])
				return nil
			}
			return c.printAllocations(err, as)
		},
	}
}

func (c *cli) printAllocations(err error, as []ipam.Allocation) error {
	if err != nil || c.json() {
		return errOrJSON(c, err, as)
	}
	for _, a := range as {
		fmt.Fprintf(c.stdout, "%s %s (pool %s)\n", a.Owner, a.Addr, a.Pool)
	}
	return nil
}

func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "-"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
