// Package buildinfo holds the version information stamped into the binary at link time:
//
//	go build -ldflags "-X github.com/opengvp/gvp/internal/buildinfo.Version=v0.1.0 ..."
package buildinfo

import (
	"fmt"
	"runtime"
)

// Set by -ldflags -X at build time; the defaults describe a development build.
var (
	// Version is the release version, "dev" for an unstamped build.
	Version = "dev"
	// Commit is the git commit the binary was built from.
	Commit = "unknown"
	// Date is the build time in RFC 3339.
	Date = "unknown"
)

// String returns a one-line description of the build.
func String() string {
	return fmt.Sprintf("gvp %s (commit %s, built %s, %s %s/%s)", Version, Commit, Date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
