package main

import (
	"github.com/spf13/cobra"

	"github.com/aird-net/aird/internal/clidoc"
	"github.com/aird-net/aird/internal/version"
)

// manSections are airctl(8)'s sections beyond the help text (markdown).
const manSections = `# EXIT STATUS

**0**
: success

**1**
: aird refused or failed the request (a rejected reload, an unknown service or VIP, permission denied), or the file checked is invalid

**2**
: usage error: unknown command or flag, wrong arguments, a malformed argument

**3**
: aird could not be reached: not running, no socket, or no answer

# ENVIRONMENT

**AIRD_SOCKET**
: the API socket when --socket is not given (default /run/aird/aird.sock)

# FILES

**/run/aird/aird.sock**
: aird's API socket; root and the members of its group (aird under the packaged unit) may use it

`

// genDocsCommand is hidden: packaging/deb.sh runs it to write airctl's man
// pages (airctl(8) and one per subcommand) and shell completions.
func (c *cli) genDocsCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-docs DIR",
		Short:  "Write airctl's man pages and shell completions into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			restore := clidoc.ManLong(root, rootIntro+" See also aird(8) and aird.toml(5).\n\n"+manSections)
			defer restore()
			return clidoc.WriteCommand(root, clidoc.Options{Dir: args[0], Version: version.Get().Version})
		},
	}
}
