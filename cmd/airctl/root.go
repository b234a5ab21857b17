package main

import (
	"context"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/config"
)

// cli holds the global flags and the output streams of one airctl run.
type cli struct {
	socket string
	output string
	stdout io.Writer
	stderr io.Writer
}

func (c *cli) client() *api.Client { return api.NewClient(c.socket) }

func (c *cli) json() bool { return c.output == "json" }

func execute(args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	started := false
	markStarted(root, &started)
	cmd, err := root.ExecuteContextC(context.Background())
	code := exitCode(err, started)
	if err != nil {
		reportError(stderr, cmd, err, code)
	}
	return code
}

const rootIntro = "airctl controls a running aird through its local API (the unix socket api.socket,\n" +
	"/run/aird/aird.sock by default) and checks configuration files."

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "airctl",
		Short:         "Control aird, the node network daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
		Long:          rootIntro + "\n\n" + exitStatusHelp,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if c.output != "table" && c.output != "json" {
				return usagef("invalid --output %q: use table or json", c.output)
			}
			return nil
		},
	}
	def := os.Getenv("AIRD_SOCKET")
	if def == "" {
		def = config.DefaultSocket
	}
	root.PersistentFlags().StringVar(&c.socket, "socket", def, "aird API socket (env AIRD_SOCKET)")
	root.PersistentFlags().StringVarP(&c.output, "output", "o", "table", "output format of read commands: table or json")
	root.AddGroup(&cobra.Group{ID: "daemon", Title: "Daemon:"}, &cobra.Group{ID: "planes", Title: "Network planes:"})
	for _, cmd := range []*cobra.Command{c.statusCommand(), c.reloadCommand(), c.configCommand(), c.logLevelCommand(), c.versionCommand()} {
		cmd.GroupID = "daemon"
		root.AddCommand(cmd)
	}
	for _, cmd := range []*cobra.Command{c.bgpCommand(), c.lbCommand(), c.ipamCommand(), c.endpointCommand()} {
		cmd.GroupID = "planes"
		root.AddCommand(cmd)
	}
	root.AddCommand(c.genDocsCommand())
	// A missing target only loses a completion; TestCompletionTargetsExist
	// catches it.
	_ = c.attachCompletions(root)
	return root
}
