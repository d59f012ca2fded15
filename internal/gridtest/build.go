package gridtest

import (
	"fmt"
	"os/exec"
)

// BuildGrid builds the grid binary to path, with extra go build flags such as
// "-race". Tests that run grid as real processes build it once, in TestMain or
// behind a sync.Once: a build takes seconds. The error carries the compiler's output.
func BuildGrid(path string, buildFlags ...string) error {
	args := append([]string{"build"}, buildFlags...)
	args = append(args, "-o", path, "github.com/sutragrid/grid/cmd/grid")
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("build grid: %v\n%s", err, out)
	}
	return nil
}
