package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aird-net/aird/internal/api"
)

func (c *cli) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show what the daemon is doing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st api.Status
			if err := c.client().Do(cmd.Context(), "GET", "/v1/status", nil, &st); err != nil {
				return err
			}
			if c.json() {
				return writeJSON(c.stdout, st)
			}
			printStatus(c, st)
			return nil
		},
	}
}

func printStatus(c *cli, st api.Status) {
	w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "Node:\t%s\n", st.Node)
	fmt.Fprintf(w, "Version:\t%s\n", st.Version)
	fmt.Fprintf(w, "State:\t%s (pid %d, up %s)\n", st.State, st.PID, time.Since(st.StartedAt).Round(time.Second))
	digest := st.Config.Digest
	if len(digest) > 12 {
		digest = digest[:12]
	}
	fmt.Fprintf(w, "Config:\t%s (generation %d, sha256 %s, loaded %s)\n", st.Config.File, st.Config.Generation, digest,
		st.Config.LoadedAt.Format(time.RFC3339))
	if r := st.LastReload; r != nil {
		if r.OK {
			changed := strings.Join(r.Changed, ", ")
			if changed == "" {
				changed = "nothing"
			}
			fmt.Fprintf(w, "Last reload:\t%s ok, changed: %s\n", r.Time.Format(time.RFC3339), changed)
		} else {
			fmt.Fprintf(w, "Last reload:\t%s REJECTED\n", r.Time.Format(time.RFC3339))
		}
	}
	fmt.Fprintf(w, "Log level:\t%s\n", st.LogLevel)
	fmt.Fprintf(w, "Pin path:\t%s\n", st.Datapath.PinPath)
	if st.Endpoints != nil {
		line := fmt.Sprintf("%d ready", st.Endpoints["ready"])
		if n := st.Endpoints["missing"]; n > 0 {
			line += fmt.Sprintf(", %d MISSING (their link is gone: airctl endpoint list)", n)
		}
		fmt.Fprintf(w, "Endpoints:\t%s\n", line)
	}
	w.Flush()
	if r := st.LastReload; r != nil && !r.OK {
		fmt.Fprintf(c.stdout, "\n%s\n", indent(r.Error))
	}
	for _, cf := range st.PodPrefixConflicts {
		fmt.Fprintf(c.stdout, "\nPOD PREFIX CONFLICT: %s is also announced by %s (%s, route %s); not advertised\n",
			cf.PodPrefix, cf.Peer, cf.PeerAddress, cf.Route)
	}
	fmt.Fprintln(c.stdout)
	w = tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "UPLINK\tIFINDEX\tXDP MODE\tADOPTED\tPROGRAM\tFLOWS")
	for _, u := range st.Datapath.Uplinks {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%s (%s)\n", u.Name, u.Ifindex, u.Mode, yesNo(u.Adopted), u.ProgramID, u.FlowAffinity, u.FlowAffinityFrom)
	}
	if len(st.Datapath.Uplinks) == 0 {
		fmt.Fprintln(w, "(none)\t\t\t\t\t")
	}
	w.Flush()
	fmt.Fprintln(c.stdout)
	w = tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "FAMILY\tPACKETS\tBYTES\t")
	fams := make([]string, 0, len(st.Datapath.Packets))
	for f := range st.Datapath.Packets {
		fams = append(fams, f)
	}
	sort.Strings(fams)
	for _, f := range fams {
		p := st.Datapath.Packets[f]
		fmt.Fprintf(w, "%s\t%d\t%d\t\n", f, p.Packets, p.Bytes)
	}
	w.Flush()
	if st.Datapath.Error != "" {
		fmt.Fprintf(c.stdout, "datapath counters unavailable: %s\n", st.Datapath.Error)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
