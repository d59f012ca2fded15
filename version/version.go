// Package version holds the version of the grid binary. Release builds set Version and
// GitCommit with -ldflags "-X".
package version

import "fmt"

var (
	// Version is the semantic version of this build.
	Version = "0.1.0"
	// Prerelease marks a build that is not a release ("dev" for local builds).
	Prerelease = "dev"
	// GitCommit is the commit the binary was built from, when known.
	GitCommit = ""
)

// String renders the version the way `grid version` prints it: "0.1.0-dev (abc1234)".
func String() string {
	v := Version
	if Prerelease != "" {
		v += "-" + Prerelease
	}
	if GitCommit != "" {
		v += fmt.Sprintf(" (%s)", GitCommit)
	}
	return v
}
