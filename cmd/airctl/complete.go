package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aird-net/aird/internal/api"
)

// completeTimeout bounds the API calls made while the shell waits for
// completions; without a running aird there are simply none.
const completeTimeout = 2 * time.Second

type completer = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective)

// argCompletions are the dynamic completions of positional arguments, by
// command path below the root. They are attached after the tree is built
// (whoever wrote the command), and TestCompletionTargetsExist fails when a
// path no longer exists.
func (c *cli) argCompletions() map[string]completer {
	return map[string]completer{
		"lb backends":   c.nth(0, c.serviceNames),
		"lb drain":      c.drainArgs,
		"lb undrain":    c.drainArgs,
		"bgp neighbors": c.nth(0, c.neighborNames),
		"endpoint del":  c.nth(0, c.endpointNames),
		"endpoint show": c.nth(0, c.endpointNames),
		"log-level":     c.nth(0, fixed("debug", "info", "warn", "error")),
		"config check": func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return []cobra.Completion{"toml"}, cobra.ShellCompDirectiveFilterFileExt
		},
	}
}

// flagCompletions are the dynamic completions of flag values.
func (c *cli) flagCompletions() map[string]map[string]completer {
	return map[string]map[string]completer{
		"lb stats":   {"vip": c.nth(-1, c.vips)},
		"bgp routes": {"neighbor": c.nth(-1, c.neighborNames), "family": c.nth(-1, fixed("ipv6", "ipv4"))},
	}
}

func fixed(words ...string) func(context.Context, []string) []cobra.Completion {
	return func(context.Context, []string) []cobra.Completion { return words }
}

// attachCompletions sets the completions on the tree rooted at root.
func (c *cli) attachCompletions(root *cobra.Command) error {
	for path, f := range c.argCompletions() {
		cmd, err := findCommand(root, path)
		if err != nil {
			return err
		}
		if cmd.ValidArgsFunction == nil && len(cmd.ValidArgs) == 0 {
			cmd.ValidArgsFunction = f
		}
	}
	for path, flags := range c.flagCompletions() {
		cmd, err := findCommand(root, path)
		if err != nil {
			return err
		}
		for name, f := range flags {
			if cmd.Flags().Lookup(name) == nil {
				return fmt.Errorf("completion: %s has no flag --%s", path, name)
			}
			if err := cmd.RegisterFlagCompletionFunc(name, f); err != nil {
				return fmt.Errorf("completion: %s --%s: %w", path, name, err)
			}
		}
	}
	return nil
}

func findCommand(root *cobra.Command, path string) (*cobra.Command, error) {
	cmd, rest, err := root.Find(strings.Fields(path))
	if err != nil || len(rest) > 0 || cmd.CommandPath() != root.Name()+" "+path {
		return nil, fmt.Errorf("completion: no command %q", path)
	}
	return cmd, nil
}

// nth completes the n-th positional argument (n < 0: a flag value) with
// what list returns for the arguments given so far, filtered by prefix.
func (c *cli) nth(n int, list func(ctx context.Context, args []string) []cobra.Completion) completer {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if n >= 0 && len(args) != n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completeTimeout)
		defer cancel()
		var out []cobra.Completion
		for _, w := range list(ctx, args) {
			if strings.HasPrefix(w, toComplete) {
				out = append(out, w)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// drainArgs completes SERVICE, then the backends of that service.
func (c *cli) drainArgs(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	switch len(args) {
	case 0:
		return c.nth(0, c.serviceNames)(cmd, args, toComplete)
	case 1:
		return c.nth(1, c.backendAddresses)(cmd, args, toComplete)
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// lbServices lists services for completion (the first pages only: a
// shell completes from what fits on a screen anyway).
func (c *cli) lbServices(ctx context.Context, q api.LBServiceQuery) []api.LBService {
	ss, err := c.lbServicePages(ctx, q, 5*lbPage)
	if err != nil {
		return nil
	}
	return ss
}

func (c *cli) serviceNames(ctx context.Context, _ []string) []cobra.Completion {
	var out []cobra.Completion
	for _, s := range c.lbServices(ctx, api.LBServiceQuery{}) {
		out = append(out, cobra.CompletionWithDesc(s.Name, fmt.Sprintf("%s %s/%s", s.VIP, portText(s.Port), s.Protocol)))
	}
	return out
}

func (c *cli) backendAddresses(ctx context.Context, args []string) []cobra.Completion {
	var out []cobra.Completion
	for _, s := range c.lbServices(ctx, api.LBServiceQuery{Name: args[0], Backends: true}) {
		if s.Name != args[0] {
			continue
		}
		for _, b := range s.Backends {
			out = append(out, b.Address.String())
		}
	}
	return out
}

func (c *cli) vips(ctx context.Context, _ []string) []cobra.Completion {
	seen := map[string]bool{}
	var out []cobra.Completion
	for _, s := range c.lbServices(ctx, api.LBServiceQuery{}) {
		if v := s.VIP.String(); !seen[v] {
			seen[v] = true
			out = append(out, cobra.CompletionWithDesc(v, s.Name))
		}
	}
	return out
}

func (c *cli) neighborNames(ctx context.Context, _ []string) []cobra.Completion {
	var ns []api.BGPNeighbor
	if c.client().Do(ctx, "GET", "/v1/bgp/neighbors", nil, &ns) != nil {
		return nil
	}
	var out []cobra.Completion
	for _, n := range ns {
		switch {
		case n.Name != "":
			out = append(out, cobra.CompletionWithDesc(n.Name, n.State))
		case n.Address.IsValid():
			out = append(out, cobra.CompletionWithDesc(n.Address.String(), n.State))
		}
	}
	return out
}

func (c *cli) endpointNames(ctx context.Context, _ []string) []cobra.Completion {
	var eps []api.Endpoint
	if c.client().Do(ctx, "GET", "/v1/endpoints", nil, &eps) != nil {
		return nil
	}
	var out []cobra.Completion
	for _, e := range eps {
		out = append(out, cobra.CompletionWithDesc(e.Name, e.Kind+" "+e.State))
	}
	return out
}
