// Command aird is the node network daemon: XDP load balancer and BGP
// speaker (router and IPAM planned), configured from one TOML file and run
// by systemd. See 'aird --help' and aird(8).
//
//	aird [--config FILE]          run (default /etc/aird/aird.toml)
//	aird --check-config FILE      validate FILE; exit 0 if valid, 1 otherwise
//	aird --cleanup [--config F]   detach and remove the pinned data plane and exit
//	aird --version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/daemon"
	"github.com/aird-net/aird/internal/datapath"
	"github.com/aird-net/aird/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// flags are aird's command line.
type flags struct {
	config    string
	check     string
	cleanup   bool
	version   bool
	genDocs   string // hidden: write man pages and completions here
	configRef string // hidden: with genDocs, render this reference as aird.toml(5)
}

// exitError carries an exit status for a message already printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func run(args []string, stdout, stderr io.Writer) int {
	root, started := command(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case !*started: // cobra's own: unknown flag, stray argument
		fmt.Fprintf(stderr, "aird: %v\nRun 'aird --help' for usage.\n", err)
		return 2
	}
	printErr(stderr, err)
	return 1
}

func command(stdout, stderr io.Writer) (*cobra.Command, *bool) {
	var f flags
	started := new(bool)
	root := &cobra.Command{
		Use:           "aird [--config FILE]",
		Short:         "the node network daemon: XDP load balancer and BGP speaker",
		Long:          longHelp,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			*started = true
			return f.run(cmd, stdout, stderr)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.CompletionOptions.DisableDefaultCmd = true
	fl := root.Flags()
	fl.StringVar(&f.config, "config", config.DefaultConfigPath, "configuration file")
	fl.StringVar(&f.check, "check-config", "", "validate this configuration file and exit (0 valid, 1 invalid)")
	fl.BoolVar(&f.cleanup, "cleanup", false, "detach and remove the pinned data plane (datapath.pin-path of --config), the pod prefix routes and the endpoints, and exit")
	fl.BoolVar(&f.version, "version", false, "print the version and exit")
	fl.StringVar(&f.genDocs, "gen-docs", "", "write man pages and shell completions into this directory and exit")
	fl.StringVar(&f.configRef, "gen-docs-config-reference", "", "with --gen-docs: render this configuration reference (docs/configuration.md) as aird.toml(5)")
	for _, h := range []string{"gen-docs", "gen-docs-config-reference"} {
		_ = fl.MarkHidden(h)
	}
	_ = root.MarkFlagFilename("config", "toml")
	_ = root.MarkFlagFilename("check-config", "toml")
	root.MarkFlagsMutuallyExclusive("check-config", "cleanup", "version", "gen-docs")
	return root, started
}

func (f flags) run(cmd *cobra.Command, stdout, stderr io.Writer) error {
	switch {
	case f.version:
		fmt.Fprintln(stdout, "aird", version.Get())
		return nil
	case f.genDocs != "":
		return genDocs(cmd, f.genDocs, f.configRef)
	case f.check != "":
		return exitError{checkConfig(f.check, stdout, stderr)}
	case f.cleanup:
		return exitError{cleanupDatapath(f.config, stdout, stderr)}
	}
	if path := os.Getenv(cpuProfileEnv); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stop()
	}
	return daemon.Run(context.Background(), daemon.Options{ConfigPath: f.config})
}

func checkConfig(path string, stdout, stderr io.Writer) int {
	if _, err := config.Load(path); err != nil {
		printErr(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: configuration is valid\n", path)
	return 0
}

func cleanupDatapath(cfgPath string, stdout, stderr io.Writer) int {
	pin := config.DefaultPinPath
	var cfg *config.Config
	if f, err := config.Load(cfgPath); err == nil {
		pin, cfg = f.Datapath.PinPath, f.Config
	} else if !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stderr, "aird: %s does not load (%v); cleaning up the default pin path %s\n", cfgPath, firstLine(err), pin)
	}
	if !datapath.BPFFSMounted() {
		fmt.Fprintf(stderr, "aird: cleanup: /sys/fs/bpf is not a bpf filesystem here, so no data plane is pinned in this mount namespace "+
			"(`ip netns exec` remounts /sys: an aird started that way detached its data plane when it exited; "+
			"for one pinned in the host's bpffs run aird --cleanup without ip netns exec, e.g. nsenter --net=/run/netns/NAME aird --cleanup)\n")
		return 1
	}
	if err := datapath.Teardown(pin); err != nil {
		fmt.Fprintf(stderr, "aird: cleanup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "removed the data plane pinned at %s\n", pin)
	n, err := daemon.RemovePodRoutes()
	if err != nil {
		fmt.Fprintf(stderr, "aird: cleanup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "removed %d pod prefix route(s)\n", n)
	eps, err := daemon.RemoveEndpoints(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "aird: cleanup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "removed %d endpoint(s)\n", eps)
	return 0
}

func printErr(w io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		fmt.Fprintf(w, "aird: configuration has %d error(s):\n%s\n", len(errs), errs.Error())
		return
	}
	fmt.Fprintf(w, "aird: %v\n", err)
}

func firstLine(err error) string {
	s := err.Error()
	for i, c := range s {
		if c == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}
