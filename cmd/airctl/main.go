// Command airctl controls a running aird through its local API and checks
// configuration files. See 'airctl --help' and airctl(8).
package main

import (
	"os"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, stderrFor(os.Stderr)))
}
