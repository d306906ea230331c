// Command gvp runs any role of the gvp voice platform; see `gvp --help`.
package main

import (
	"os"

	"github.com/opengvp/gvp/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
