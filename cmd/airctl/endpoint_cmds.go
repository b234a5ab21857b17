package main

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/aird-net/aird/internal/api"
)

func (c *cli) endpointCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "endpoint", Short: "Local endpoints (containers and VMs) and their routes"}
	cmd.AddCommand(c.endpointAddCommand(), c.endpointDelCommand(), c.endpointListCommand(), c.endpointShowCommand())
	return cmd
}

func (c *cli) endpointAddCommand() *cobra.Command {
	var req api.EndpointRequest
	var vips []string
	cmd := &cobra.Command{
		Use:   "add NAME (--netns PATH | --tap IFNAME)",
		Short: "Create an endpoint: a container (veth into --netns) or a VM (an existing --tap), with addresses from IPAM",
		Long: `Create an endpoint and route its addresses.

A container (--netns /run/netns/NAME or /proc/PID/ns/net) gets a veth pair:
the container side (--ifname, default eth0) with its addresses, a default
route via fe80::1 / 169.254.1.1 and the VIPs on lo; the host side is routed
and runs the endpoint program. A VM (--tap IFNAME) is routed through an
existing tap; the guest configures the addresses shown. With --vip the
endpoint is a direct-server-return backend of that VIP.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			for _, v := range vips {
				a, err := netip.ParseAddr(v)
				if err != nil {
					return usagef("--vip %q: %v", v, err)
				}
				req.VIPs = append(req.VIPs, a)
			}
			var ep api.Endpoint
			if err := c.client().Do(cmd.Context(), "POST", "/v1/endpoints", req, &ep); err != nil {
				return err
			}
			if c.json() {
				return writeJSON(c.stdout, ep)
			}
			fmt.Fprintf(c.stdout, "endpoint %s: %s on %s, addresses %s\n", ep.Name, ep.Kind, ep.Interface, addrList(ep.Addresses))
			if ep.Kind == "vm" {
				printGuestConfig(c, ep)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Netns, "netns", "", "network namespace of a container (path)")
	f.StringVar(&req.Ifname, "ifname", "", "name of the link inside the container (default eth0)")
	f.StringVar(&req.Tap, "tap", "", "existing tap device of a VM")
	f.StringVar(&req.MAC, "mac", "", "the VM's MAC address, if known (else learned)")
	f.StringSliceVar(&req.Families, "family", nil, "address families: ipv6, ipv4 (default: every family a pool has)")
	f.StringSliceVar(&vips, "vip", nil, "a VIP the endpoint serves with direct server return (repeatable)")
	return cmd
}

// printGuestConfig tells what a VM's guest must configure.
func printGuestConfig(c *cli, ep api.Endpoint) {
	fmt.Fprintln(c.stdout, "guest configuration (static; the tap's host side answers for the gateways):")
	for _, a := range ep.Addresses {
		if a.Is6() {
			fmt.Fprintf(c.stdout, "  ip -6 addr add %s/128 dev eth0\n  ip -6 route add default via fe80::1 dev eth0\n", a)
		} else {
			fmt.Fprintf(c.stdout, "  ip addr add %s/32 dev eth0\n  ip route add 169.254.1.1 dev eth0 scope link\n  ip route add default via 169.254.1.1 dev eth0\n", a)
		}
	}
}

func (c *cli) endpointDelCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "del NAME",
		Aliases: []string{"delete", "rm"},
		Short:   "Delete an endpoint: its link (a container's veth), routes, program and addresses",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.client().Do(cmd.Context(), "DELETE", "/v1/endpoints/"+url.PathEscape(args[0]), nil, nil)
		},
	}
}

func (c *cli) endpointListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "Show the endpoints with their interfaces, addresses and counters",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var eps []api.Endpoint
			err := c.client().Do(cmd.Context(), "GET", "/v1/endpoints", nil, &eps)
			if err != nil || c.json() {
				return errOrJSON(c, err, eps)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tKIND\tSTATE\tINTERFACE\tADDRESSES\tVIPS\tRX PKTS\tTX PKTS\tDROPS")
			for _, ep := range eps {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", ep.Name, ep.Kind, ep.State, ep.Interface,
					addrList(ep.Addresses), addrList(ep.VIPs), ep.Counters.RxPackets, ep.Counters.TxPackets,
					ep.Counters.DropSpoofed+ep.Counters.DropDecap)
			}
			return w.Flush()
		},
	}
}

func (c *cli) endpointShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show one endpoint in detail",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ep api.Endpoint
			err := c.client().Do(cmd.Context(), "GET", "/v1/endpoints/"+url.PathEscape(args[0]), nil, &ep)
			if err != nil || c.json() {
				return errOrJSON(c, err, ep)
			}
			w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
			for _, row := range [][2]string{
				{"name", ep.Name}, {"kind", ep.Kind}, {"state", ep.State}, {"interface", ep.Interface},
				{"netns", ep.Netns}, {"ifname", ep.Ifname}, {"tap", ep.Tap}, {"mac", ep.MAC},
				{"mtu", fmt.Sprint(ep.MTU)}, {"addresses", addrList(ep.Addresses)}, {"vips", addrList(ep.VIPs)},
				{"created", ep.Created.Format("2006-01-02T15:04:05Z")},
				{"rx", fmt.Sprintf("%d packets, %d bytes", ep.Counters.RxPackets, ep.Counters.RxBytes)},
				{"tx", fmt.Sprintf("%d packets, %d bytes", ep.Counters.TxPackets, ep.Counters.TxBytes)},
				{"dropped", fmt.Sprintf("%d spoofed, %d tunnel", ep.Counters.DropSpoofed, ep.Counters.DropDecap)},
			} {
				if row[1] != "" {
					fmt.Fprintf(w, "%s:\t%s\n", row[0], row[1])
				}
			}
			return w.Flush()
		},
	}
}

func addrList(as []netip.Addr) string {
	if len(as) == 0 {
		return "-"
	}
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}
