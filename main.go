// Command gvp runs any role of the gvp voice platform; see `gvp --help`.
package main

import (
	"os"
	// Time zones for report boundaries (rs.timezone) even where the host has no tzdata.
	_ "time/tzdata"

	"github.com/opengvp/gvp/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
