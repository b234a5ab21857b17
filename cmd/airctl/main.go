// Command airctl controls a running aird through its local API and checks
// configuration files. See 'airctl --help'.
package main

import (
	"os"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}
