package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/aird-net/aird/integration/lab"
)

// show drives traffic through the lab and prints what a user wants to see
// (only where to look when upOnly).
func show(l *lab.Lab, requests int, upOnly bool) error {
	printRack(l)
	if upOnly {
		return nil
	}
	ctx := context.Background()
	var results []lab.Result
	for _, load := range []lab.Load{
		{Kind: lab.HTTP, VIP: lab.VIP6, Requests: requests, Workers: 16},
		{Kind: lab.HTTP, VIP: lab.VIP4, Requests: requests, Workers: 16},
		{Kind: lab.TCP, VIP: lab.VIP6, Requests: requests / 4, Workers: 8},
		{Kind: lab.UDP, VIP: lab.VIP4, Requests: requests / 4, Workers: 8},
	} {
		say(fmt.Sprintf("client: %d %s requests to %s", load.Requests, strings.ToUpper(load.Kind), load.VIP))
		r, err := l.Traffic(ctx, load)
		if err != nil {
			return err
		}
		fmt.Println(r)
		results = append(results, r)
	}
	say("requests per backend (the endpoint that answered, and its node)")
	printPerBackend(l, results)

	say("tor1 (FRR): BGP sessions (unnumbered, one per node) and the VIPs' ECMP routes")
	vtysh(l, "show bgp summary")
	vtysh(l, "show ipv6 route "+lab.VIP6+"/128")
	vtysh(l, "show ip route "+lab.VIP4+"/32")
	say("tor2 (BIRD): BGP sessions (by address), BFD, and the VIPs' ECMP routes")
	birdc(l, "show", "protocols")
	birdc(l, "show", "bfd", "sessions")
	birdc(l, "show", "route", "for", lab.VIP6)
	birdc(l, "show", "route", "for", lab.VIP4)
	for _, tor := range []string{l.Tor1.NS, l.Tor2.NS} {
		fmt.Printf("\n$ ip -n %s route show %s; ip -n %s route show %s\n", tor, lab.VIP6, tor, lab.VIP4)
		for _, args := range [][]string{{"-6", "route", "show", lab.VIP6}, {"-4", "route", "show", lab.VIP4}} {
			out, _ := exec.Command("ip", append([]string{"-n", tor}, args...)...).CombinedOutput()
			fmt.Print(string(out))
		}
	}
	for _, n := range l.LBs {
		say(fmt.Sprintf("%s: airctl lb stats (counters that are zero left out)", n.Name))
		out, err := n.Airctl("lb", "stats")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			f := strings.Fields(line)
			if len(f) == 3 && (f[0] == "event" || f[0] == "drop") && f[2] == "0" {
				continue
			}
			fmt.Println(line)
		}
	}
	for _, r := range results {
		if r.Failed > 0 {
			return fmt.Errorf("%d of %d %s requests to %s failed", r.Failed, r.OK+r.Failed, r.Kind, r.Target)
		}
	}
	return nil
}

func printRack(l *lab.Lab) {
	say("the rack (network namespaces; every aird a plain process)")
	fmt.Printf(`   client %-16s  %s, %s: the world beyond the rack
     |  ECMP over both ToRs
   tor1 (FRR)  %-16s   tor2 (BIRD) %s
     | unnumbered BGP + BFD    | BGP by address + BFD    (ECMP over the LB nodes)
`, l.Client, lab.ClientAddr6, lab.ClientAddr4, l.Tor1.NS, l.Tor2.NS)
	for _, n := range l.AllNodes() {
		what := "announces " + lab.VIP6 + " and " + lab.VIP4 + ", balances them in XDP"
		if n.Role == lab.RoleBackend {
			var eps []string
			for _, e := range l.Servers {
				if e.Node == n {
					eps = append(eps, fmt.Sprintf("%s %s", e.Name, e.Addr6))
				}
			}
			what = "endpoints (direct server return): " + strings.Join(eps, ", ")
		}
		fmt.Printf("   %-4s %-16s underlay %-12s %s\n", n.Name, n.NS, n.Underlay(), what)
	}
}

func printPerBackend(l *lab.Lab, rs []lab.Result) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprint(w, "BACKEND\tNODE\tADDRESS")
	for _, r := range rs {
		fmt.Fprintf(w, "\t%s %s", strings.ToUpper(r.Kind), r.Target)
	}
	fmt.Fprintln(w)
	names := make([]string, 0, len(l.Servers))
	byName := map[string]*lab.Endpoint{}
	for _, e := range l.Servers {
		names = append(names, e.Name)
		byName[e.Name] = e
	}
	sort.Strings(names)
	for _, n := range names {
		e := byName[n]
		fmt.Fprintf(w, "%s\t%s\t%s", n, e.Node.Name, e.Addr6)
		for _, r := range rs {
			fmt.Fprintf(w, "\t%d", r.PerBackend[n])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, "failed\t\t")
	for _, r := range rs {
		fmt.Fprintf(w, "\t%d", r.Failed)
	}
	fmt.Fprintln(w)
	_ = w.Flush()
}

func vtysh(l *lab.Lab, cmd string) {
	fmt.Printf("\n$ vtysh --vty_socket %s -c '%s'\n", l.Tor1.Dir, cmd)
	out, _ := l.Tor1.Vtysh(cmd)
	fmt.Print(out)
}

func birdc(l *lab.Lab, args ...string) {
	fmt.Printf("\n$ birdc -s %s %s\n", l.Tor2.Socket, strings.Join(args, " "))
	out, _ := l.Tor2.Birdc(args...)
	fmt.Print(out)
}

// printKeep tells how to look around a kept lab and how to remove it.
func printKeep(l *lab.Lab) {
	lb := l.LBs[0]
	say("the lab stays up; look around (as root)")
	fmt.Printf(`  ip netns exec %[1]s curl -s http://[%[2]s]/          # a request to the VIP
  ip netns exec %[1]s curl -s http://%[3]s/            # over IPv4
  vtysh --vty_socket %[4]s -c 'show bgp summary'        # tor1 (FRR)
  birdc -s %[5]s show protocols                          # tor2 (BIRD)
  ip -n %[6]s -6 route show %[2]s                        # ECMP in tor1's kernel
  %[7]s --socket %[8]s lb stats                          # lb1 (also: bgp neighbors, lb backends, status)
  logs, configs and sockets: %[9]s
stop it with:
  make demo-down            # or: bin/airdlab down
`, l.Client, lab.VIP6, lab.VIP4, l.Tor1.Dir, l.Tor2.Socket, l.Tor1.NS, "bin/airctl", lb.Socket(), l.Dir)
}
