package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/aird-net/aird/internal/api"
)

// airctl's exit statuses (documented in airctl(8), the "EXIT STATUS" of
// the root command's help, and docs/operator-guide.md).
const (
	exitOK          = 0 // done
	exitFailed      = 1 // aird refused or failed the request; invalid file; not found
	exitUsage       = 2 // bad command line: unknown command or flag, wrong arguments
	exitUnreachable = 3 // aird could not be reached: not running, no socket, no answer
)

const exitStatusHelp = `Exit status:
  0  success
  1  aird refused or failed the request (a rejected reload, an unknown
     service, permission denied), or the file checked is invalid
  2  usage error: unknown command or flag, wrong arguments
  3  aird could not be reached: not running, no socket, or no answer`

// usageError is a bad command line found after parsing (a malformed
// argument value).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// silentError carries an exit status for errors already printed.
type silentError struct{ code int }

func (e silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitCode maps the error of a run to airctl's exit status. started says
// whether a command's Run ran: cobra's own errors before that (unknown
// command or flag, argument count) are usage errors.
func exitCode(err error, started bool) int {
	var se silentError
	var ue usageError
	var nr *api.NotRunningError
	var un *api.UnreachableError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &se):
		return se.code
	case errors.As(err, &ue), !started:
		return exitUsage
	case errors.As(err, &nr), errors.As(err, &un):
		return exitUnreachable
	}
	return exitFailed
}

// reportError prints err the way its exit status calls for.
func reportError(w io.Writer, cmd *cobra.Command, err error, code int) {
	var se silentError
	if errors.As(err, &se) {
		return
	}
	fmt.Fprintln(w, "airctl:", err)
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(w, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
}

// markStarted wraps every command's Run so that started is set when one
// runs, whoever wrote the command.
func markStarted(cmd *cobra.Command, started *bool) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, args []string) error {
			*started = true
			return run(c, args)
		}
	} else if run := cmd.Run; run != nil {
		cmd.Run = func(c *cobra.Command, args []string) {
			*started = true
			run(c, args)
		}
	}
	for _, sub := range cmd.Commands() {
		markStarted(sub, started)
	}
}
