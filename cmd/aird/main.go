// Command aird is the node daemon: XDP load balancer, eBPF router, IPAM and
// BGP speaker, configured from one TOML file and run by systemd.
//
//	aird [--config FILE]          run (default /etc/aird/aird.toml)
//	aird --check-config FILE      validate FILE; exit 0 if valid, 1 otherwise
//	aird --cleanup [--config F]   remove the pinned data plane and exit
//	aird --version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/daemon"
	"github.com/aird-net/aird/internal/datapath"
	"github.com/aird-net/aird/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("aird", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", config.DefaultConfigPath, "configuration file")
	check := fs.String("check-config", "", "validate this configuration file and exit (0 valid, 1 invalid)")
	cleanup := fs.Bool("cleanup", false, "detach and remove the pinned data plane (datapath.pin-path) and the pod prefix routes, and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "aird: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	switch {
	case *showVersion:
		fmt.Fprintln(stdout, "aird", version.Get())
		return 0
	case *check != "":
		return checkConfig(*check, stdout, stderr)
	case *cleanup:
		return cleanupDatapath(*cfgPath, stdout, stderr)
	}
	if err := daemon.Run(context.Background(), daemon.Options{ConfigPath: *cfgPath}); err != nil {
		printErr(stderr, err)
		return 1
	}
	return 0
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
	if f, err := config.Load(cfgPath); err == nil {
		pin = f.Datapath.PinPath
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
