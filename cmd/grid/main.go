// Command grid runs and watches a fleet of storage nodes. See command/ for the commands.
package main

import (
	"os"

	"github.com/sutragrid/grid/command"
)

func main() {
	os.Exit(command.Main(os.Args[1:]))
}
