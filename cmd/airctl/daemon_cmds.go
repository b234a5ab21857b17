package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aird-net/aird/internal/api"
	"github.com/aird-net/aird/internal/config"
	"github.com/aird-net/aird/internal/version"
)

func (c *cli) reloadCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Re-read the configuration file and apply the changes; fails if the file is rejected",
		Long: "Asks aird to re-read its configuration file and apply only what changed. It waits for the\n" +
			"outcome and exits non-zero when the file is rejected (the running configuration stays),\n" +
			"so it serves as systemd's ExecReload.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res api.ReloadResult
			err := c.client().Do(cmd.Context(), "POST", "/v1/reload", nil, &res)
			var se *api.StatusError
			if err != nil && !errors.As(err, &se) {
				return err
			}
			if c.json() {
				if werr := writeJSON(c.stdout, res); werr != nil {
					return werr
				}
			} else if res.OK {
				changed := strings.Join(res.Changed, ", ")
				if changed == "" {
					changed = "nothing changed"
				}
				fmt.Fprintf(c.stdout, "reloaded: generation %d (%s)\n", res.Generation, changed)
			}
			if err != nil {
				if !c.json() {
					fmt.Fprintln(c.stderr, "airctl: reload failed:", res.Error)
				}
				return silentError{code: 1}
			}
			return nil
		},
	}
}

func (c *cli) configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check configuration files, show the running configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Validate a configuration file (exit 0 valid, 1 invalid); needs no running daemon",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := config.Load(args[0])
			var errs config.Errors
			if c.json() {
				out := struct {
					File   string          `json:"file"`
					Valid  bool            `json:"valid"`
					Errors []*config.Error `json:"errors"`
					Error  string          `json:"error,omitempty"`
				}{File: args[0], Valid: err == nil, Errors: []*config.Error{}}
				if errors.As(err, &errs) {
					out.Errors = errs
				} else if err != nil {
					out.Error = err.Error()
				}
				if werr := writeJSON(c.stdout, out); werr != nil {
					return werr
				}
			} else if err == nil {
				fmt.Fprintf(c.stdout, "%s: configuration is valid\n", args[0])
			} else if errors.As(err, &errs) {
				fmt.Fprintf(c.stderr, "%s\n%d error(s)\n", errs.Error(), len(errs))
			} else {
				fmt.Fprintln(c.stderr, "airctl:", err)
			}
			if err != nil {
				return silentError{code: 1}
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Print the running configuration, defaults filled in (TOML; -o json for JSON)",
		Long: "Prints the configuration aird runs with, defaults filled in: in TOML with the file's own\n" +
			"key names (it loads as a configuration file that means the same), or in JSON with -o json\n" +
			"(the API's names: snake_case). Passwords (bgp.peers[].password) are never shown.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var raw json.RawMessage
			if err := c.client().Do(cmd.Context(), "GET", "/v1/config", nil, &raw); err != nil {
				return err
			}
			if c.json() {
				_, err := c.stdout.Write(append(raw, '\n'))
				return err
			}
			return configTOML(c.stdout, raw)
		},
	})
	return cmd
}

func (c *cli) logLevelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "log-level [debug|info|warn|error]",
		Short: "Show or change the log level at run time (until a reload that changes [log], or a restart)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var lv api.LogLevel
			var err error
			if len(args) == 1 {
				err = c.client().Do(cmd.Context(), "PUT", "/v1/log/level", api.LogLevel{Level: args[0]}, &lv)
			} else {
				err = c.client().Do(cmd.Context(), "GET", "/v1/log/level", nil, &lv)
			}
			if err != nil {
				return err
			}
			if c.json() {
				return writeJSON(c.stdout, lv)
			}
			fmt.Fprintln(c.stdout, lv.Level)
			return nil
		},
	}
}

func (c *cli) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print airctl's version, and the daemon's when it is running",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := struct {
				Client version.Info  `json:"client"`
				Daemon *version.Info `json:"daemon,omitempty"`
				Error  string        `json:"daemon_error,omitempty"`
			}{Client: version.Get()}
			var st api.Status
			if err := c.client().Do(cmd.Context(), "GET", "/v1/status", nil, &st); err != nil {
				out.Error = err.Error()
			} else {
				out.Daemon = &st.Version
			}
			if c.json() {
				return writeJSON(c.stdout, out)
			}
			fmt.Fprintln(c.stdout, "airctl", out.Client)
			if out.Daemon != nil {
				fmt.Fprintln(c.stdout, "aird  ", *out.Daemon)
			} else {
				fmt.Fprintln(c.stdout, "aird   (not reachable:", out.Error+")")
			}
			return nil
		},
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
