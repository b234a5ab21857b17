package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/aird-net/aird/internal/clidoc"
	"github.com/aird-net/aird/internal/version"
)

// genDocs writes aird(8), aird's completions and, given the configuration
// reference, aird.toml(5) into dir (packaging/deb.sh uses it).
func genDocs(root *cobra.Command, dir, configRef string) error {
	o := clidoc.Options{Dir: dir, Version: version.Get().Version}
	restore := clidoc.ManLong(root, longHelp+"\n\n"+manSections)
	err := clidoc.WriteCommand(root, o)
	restore()
	if err != nil {
		return err
	}
	if configRef == "" {
		return nil
	}
	md, err := os.ReadFile(configRef)
	if err != nil {
		return fmt.Errorf("configuration reference: %w", err)
	}
	return clidoc.ConfigPage(md, o)
}
