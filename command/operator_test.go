package command

import (
	"strings"
	"testing"

	"github.com/hashicorp/cli"
)

// clientCommands are the commands that talk to a server's HTTP API.
var clientCommands = []string{
	"members",
	"agent status",
	"node spawn",
	"node stop",
	"node status",
	"node logs",
	"operator raft list-peers",
	"operator raft remove-peer",
	"operator snapshot save",
	"operator snapshot restore",
	"operator gossip keyring",
}

func TestHelpOfEveryCommand(t *testing.T) {
	isolateEnv(t)
	names := append([]string{"version", "operator", "operator raft", "operator snapshot", "operator gossip", "node"}, clientCommands...)
	for _, name := range names {
		for _, flag := range []string{"-help", "-h", "--help"} {
			t.Run(name+" "+flag, func(t *testing.T) {
				r := runCLI(t, append(strings.Fields(name), flag)...)
				exitCode(0)(t, r)
				noStderr()(t, r)
				if !strings.HasPrefix(r.stdout, "Usage: grid "+name+" ") {
					t.Errorf("help does not start with the usage line:\n%s", r.stdout)
				}
			})
		}
	}
	for _, name := range clientCommands {
		t.Run(name+" options", func(t *testing.T) {
			r := runCLI(t, append(strings.Fields(name), "-help")...)
			stdoutHas("-address=<addr>", "GRID_ADDR", "-json")(t, r)
		})
	}
}

func TestParentCommands(t *testing.T) {
	tests := []struct {
		name string
		subs []string
	}{
		{"operator", []string{"gossip", "raft", "snapshot"}},
		{"operator gossip", []string{"keyring"}},
		{"operator raft", []string{"list-peers", "remove-peer"}},
		{"operator snapshot", []string{"save", "restore"}},
		{"node", []string{"spawn", "stop", "status", "logs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, err := Commands(cli.NewMockUi())[tt.name]()
			if err != nil {
				t.Fatal(err)
			}
			if code := cmd.Run(nil); code != cli.RunResultHelp {
				t.Errorf("Run() = %d, want cli.RunResultHelp", code)
			}
			if cmd.Synopsis() == "" {
				t.Error("no synopsis")
			}

			// Run through the CLI, a parent prints its help on stderr and fails; with
			// -help it prints it on stdout and succeeds. Each subcommand is listed once.
			for _, args := range [][]string{strings.Fields(tt.name), append(strings.Fields(tt.name), "-help")} {
				r := runCLI(t, args...)
				out := r.stdout
				if len(args) == len(strings.Fields(tt.name)) {
					exitCode(1)(t, r)
					noStdout()(t, r)
					out = r.stderr
				} else {
					exitCode(0)(t, r)
				}
				if n := strings.Count(out, "Subcommands:"); n != 1 {
					t.Errorf("%q: help lists subcommands %d times:\n%s", args, n, out)
				}
				for _, sub := range tt.subs {
					if !strings.Contains(out, "\n  "+sub+" ") {
						t.Errorf("%q: help does not list %q:\n%s", args, sub, out)
					}
					if _, ok := Commands(cli.NewMockUi())[tt.name+" "+sub]; !ok {
						t.Errorf("help lists %q, which is not a command", tt.name+" "+sub)
					}
				}
			}
		})
	}
}

func TestCLIRunsNestedCommands(t *testing.T) {
	isolateEnv(t)
	f := newFakeAPI(t, nil)
	// The fake server answers 404 everywhere: what matters is that the CLI routed the
	// arguments to the right command, which names what it tried.
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"members", "-address=" + f.URL}, "list members:"},
		{[]string{"operator", "raft", "list-peers", "-address=" + f.URL}, "list Raft peers:"},
		{[]string{"operator", "gossip", "keyring", "-address=" + f.URL, "-list"}, "list gossip keys:"},
		{[]string{"operator", "raft", "remove-peer", "-address=" + f.URL, "-peer-id=x"}, `remove Raft peer with ID "x":`},
		{[]string{"operator", "snapshot", "save", "-address=" + f.URL, t.TempDir() + "/s.snap"}, "save snapshot:"},
		{[]string{"agent", "status", "-address=" + f.URL}, "list agents:"},
		{[]string{"node", "spawn", "-address=" + f.URL, "-agent=a", "-port=1"}, "spawn node on a:"},
		{[]string{"node", "status", "-address=" + f.URL}, "list nodes:"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			r := runCLI(t, tt.args...)
			failsWith(tt.want, "(HTTP 404)")(t, r)
		})
	}
}
