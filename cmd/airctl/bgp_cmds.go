package main

import (
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aird-net/aird/internal/api"
)

func (c *cli) bgpCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "bgp", Short: "BGP speaker: neighbors and routes"}
	cmd.AddCommand(&cobra.Command{
		Use:   "neighbors [PEER]",
		Short: "Show BGP neighbors (a PEER is a name or an address)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ns []api.BGPNeighbor
			if err := c.client().Do(cmd.Context(), "GET", "/v1/bgp/neighbors", nil, &ns); err != nil {
				return err
			}
			if len(args) == 1 {
				ns = filterNeighbors(ns, args[0])
				if len(ns) == 0 {
					return fmt.Errorf("no neighbor %q", args[0])
				}
			}
			if c.json() {
				return writeJSON(c.stdout, ns)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			if len(args) == 1 {
				return printNeighbor(c, ns[0])
			}
			fmt.Fprintln(w, "NAME\tADDRESS\tPEER AS\tSTATE\tFOR\tBFD\tFAMILIES\tRECEIVED\tACCEPTED\tADVERTISED\tLAST ERROR")
			for _, n := range ns {
				addr := "-"
				if n.Address.IsValid() {
					addr = n.Address.String()
				} else if n.Interface != "" {
					addr = "(searching on " + n.Interface + ")"
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%d/%d\t%d\t%s\n", n.Name, addr, n.PeerASN, n.State,
					stateFor(n, time.Now()), dash(n.BFD), familiesCell(n), n.Received, n.Accepted,
					n.MaxPrefixes, n.Advertised, dash(n.LastError))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			for _, n := range ns {
				for _, f := range n.FamilyStatus {
					if f.State == "not-sendable" || f.State == "not-negotiated" {
						fmt.Fprintf(c.stdout, "%s: %s %s: %s\n", n.Name, f.Family, f.State, f.Reason)
					}
				}
				if n.Hint != "" {
					fmt.Fprintf(c.stdout, "%s: hint: %s\n", n.Name, n.Hint)
				}
			}
			return nil
		},
	})
	var neighbor, family string
	routes := &cobra.Command{
		Use:       "routes advertised|received",
		Short:     "Show the routes this node advertises, or those it accepted from its peers",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"advertised", "received"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "advertised" && args[0] != "received" {
				return fmt.Errorf("routes: say advertised or received, not %q", args[0])
			}
			q := url.Values{"kind": {args[0]}}
			if neighbor != "" {
				q.Set("neighbor", neighbor)
			}
			if family != "" {
				q.Set("family", family)
			}
			var rs []api.BGPRoute
			if err := c.client().Do(cmd.Context(), "GET", "/v1/bgp/routes?"+q.Encode(), nil, &rs); err != nil {
				return err
			}
			if c.json() {
				return writeJSON(c.stdout, rs)
			}
			return printRoutes(c, rs)
		},
	}
	cmd.AddCommand(c.drainCommand(true), c.drainCommand(false))
	routes.Flags().StringVar(&neighbor, "neighbor", "", "only routes from this peer (name or address)")
	routes.Flags().StringVar(&family, "family", "", "ipv6 or ipv4")
	cmd.AddCommand(routes)
	return cmd
}

// stateFor is how long the session has been in its state (established or
// not): the uptime, or the time since it went down.
func stateFor(n api.BGPNeighbor, now time.Time) string {
	switch {
	case n.State == "established" && n.UptimeSec > 0:
		return time.Duration(n.UptimeSec * float64(time.Second)).Round(time.Second).String()
	case n.StateSince.IsZero():
		return "-"
	}
	return now.Sub(n.StateSince).Round(time.Second).String()
}

// printNeighbor shows one neighbor in full.
func printNeighbor(c *cli, n api.BGPNeighbor) error {
	w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	addr := "-"
	if n.Address.IsValid() {
		addr = n.Address.String()
	}
	if n.Interface != "" {
		addr += " on " + n.Interface
	}
	fmt.Fprintf(w, "name:\t%s\n", n.Name)
	fmt.Fprintf(w, "address:\t%s\n", addr)
	fmt.Fprintf(w, "AS:\tpeer %d, local %d\n", n.PeerASN, n.LocalASN)
	fmt.Fprintf(w, "state:\t%s for %s\n", n.State, stateFor(n, time.Now()))
	if n.BFD != "" {
		fmt.Fprintf(w, "BFD:\t%s\n", n.BFD)
	}
	for _, f := range n.FamilyStatus {
		line := f.State
		if f.State == "sent" && f.NextHop.IsValid() {
			line += ", next hop " + f.NextHop.String()
		} else if f.State == "sent" {
			line += ", next hop: the session's local address"
		}
		if f.Reason != "" && f.State != "sent" {
			line += ": " + f.Reason
		}
		fmt.Fprintf(w, "family %s:\t%s\n", f.Family, line)
	}
	fmt.Fprintf(w, "extended next hop:\t%t (announced by the peer for IPv4 unicast)\n", n.ExtendedNextHop)
	fmt.Fprintf(w, "routes:\t%d received, %d accepted (max %d), %d advertised\n", n.Received, n.Accepted, n.MaxPrefixes, n.Advertised)
	fmt.Fprintf(w, "last error:\t%s\n", dash(n.LastError))
	for _, x := range []struct {
		what string
		n    *api.BGPNotification
	}{{"last NOTIFICATION sent", n.LastNotificationSent}, {"last NOTIFICATION received", n.LastNotificationReceived}} {
		v := "-"
		if x.n != nil {
			v = fmt.Sprintf("%s (code %d, subcode %d) at %s", x.n.Text, x.n.Code, x.n.Subcode, x.n.At.Format(time.DateTime))
		}
		fmt.Fprintf(w, "%s:\t%s\n", x.what, v)
	}
	if n.Hint != "" {
		fmt.Fprintf(w, "hint:\t%s\n", n.Hint)
	}
	return w.Flush()
}

// familiesCell lists the configured families, each marked with what
// stops our routes of that family from going to the peer, if anything:
// "ipv6 ipv4(not-sendable)".
func familiesCell(n api.BGPNeighbor) string {
	if len(n.FamilyStatus) == 0 {
		return dash(strings.Join(n.Families, " "))
	}
	cells := make([]string, len(n.FamilyStatus))
	for i, f := range n.FamilyStatus {
		cells[i] = f.Family
		if f.State != "sent" && f.State != "down" {
			cells[i] += "(" + f.State + ")"
		}
	}
	return strings.Join(cells, " ")
}

func filterNeighbors(ns []api.BGPNeighbor, peer string) []api.BGPNeighbor {
	var out []api.BGPNeighbor
	for _, n := range ns {
		if n.Name == peer || n.Address.String() == peer {
			out = append(out, n)
		}
	}
	return out
}

func printRoutes(c *cli, rs []api.BGPRoute) error {
	w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "PREFIX\tNEXT HOP\tPEER\tAS PATH\tCOMMUNITIES\tFLAGS")
	for _, r := range rs {
		path := make([]string, len(r.ASPath))
		for i, a := range r.ASPath {
			path[i] = fmt.Sprint(a)
		}
		var flags []string
		for _, f := range []struct {
			on   bool
			name string
		}{{r.Best, "best"}, {r.Stale, "stale"}, {r.Installed, "fib"}} {
			if f.on {
				flags = append(flags, f.name)
			}
		}
		peer := r.Peer
		if peer == "" && r.PeerAddress.IsValid() {
			peer = r.PeerAddress.String()
		}
		nh := "-"
		if r.NextHop.IsValid() {
			nh = r.NextHop.String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Prefix, nh, dash(peer), dash(strings.Join(path, " ")),
			dash(strings.Join(append(r.Communities, r.LargeCommunities...), " ")), dash(strings.Join(flags, ",")))
	}
	return w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *cli) drainCommand(drain bool) *cobra.Command {
	use, short, path := "drain", "Announce every route with GRACEFUL_SHUTDOWN (65535:0), then withdraw after bgp.drain.wait", "/v1/bgp/drain"
	if !drain {
		use, short, path = "undrain", "End a drain: announce the routes normally again", "/v1/bgp/undrain"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res api.BGPDrain
			if err := c.client().Do(cmd.Context(), "POST", path, nil, &res); err != nil {
				return err
			}
			if c.json() {
				return writeJSON(c.stdout, res)
			}
			if res.Drained {
				fmt.Fprintf(c.stdout, "draining: routes announced with GRACEFUL_SHUTDOWN, withdrawn in %s\n", res.Wait)
			} else {
				fmt.Fprintln(c.stdout, "undrained: routes announced normally")
			}
			return nil
		},
	}
}
