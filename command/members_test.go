package command

import (
	"net/http"
	"testing"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/api"
)

// membersFixture is a pool of three servers and one agent, not in name order, as
// GET /v1/members might return it.
const membersFixture = `[
  {"name":"host-127.0.0.12","address":"127.0.0.12","port":7946,"status":"alive","role":"server","leader":false,"version":"0.1.0-dev","tags":{"role":"server","raft_port":"7002"}},
  {"name":"agent-001","address":"127.0.0.21","port":7946,"status":"alive","role":"agent","leader":false,"version":"0.1.0-dev","tags":{"role":"agent"}},
  {"name":"host-127.0.0.11","address":"127.0.0.11","port":7946,"status":"alive","role":"server","leader":true,"version":"0.1.0-dev","tags":{"role":"server","raft_port":"7002"}},
  {"name":"host-127.0.0.13","address":"127.0.0.13","port":7946,"status":"failed","role":"server","leader":false,"version":"0.1.0-dev","tags":{"role":"server","raft_port":"7002"}}
]`

func TestMembers(t *testing.T) {
	membersOK := map[string]http.HandlerFunc{"GET /v1/members": rawReply(membersFixture)}
	tests := []struct {
		name   string
		routes map[string]http.HandlerFunc
		args   []string // "ADDR" is replaced by the fake server's URL
		env    string   // GRID_ADDR; "ADDR" as above, "DEAD" for a stopped server
		checks []check
	}{
		{
			name:   "table sorted by name",
			routes: membersOK,
			args:   []string{"-address=ADDR"},
			checks: []check{exitCode(0), noStderr(), tableIs(
				[]string{"Name", "Address", "Status", "Role", "Leader"},
				[]string{"agent-001", "127.0.0.21:7946", "alive", "agent", "false"},
				[]string{"host-127.0.0.11", "127.0.0.11:7946", "alive", "server", "true"},
				[]string{"host-127.0.0.12", "127.0.0.12:7946", "alive", "server", "false"},
				[]string{"host-127.0.0.13", "127.0.0.13:7946", "failed", "server", "false"},
			)},
		},
		{
			name:   "json",
			routes: membersOK,
			args:   []string{"-address=ADDR", "-json"},
			checks: []check{exitCode(0), noStderr(), jsonIs(`[
  {"name":"agent-001","address":"127.0.0.21","port":7946,"status":"alive","role":"agent","leader":false,"version":"0.1.0-dev","tags":{"role":"agent"}},
  {"name":"host-127.0.0.11","address":"127.0.0.11","port":7946,"status":"alive","role":"server","leader":true,"version":"0.1.0-dev","tags":{"role":"server","raft_port":"7002"}},
  {"name":"host-127.0.0.12","address":"127.0.0.12","port":7946,"status":"alive","role":"server","leader":false,"version":"0.1.0-dev","tags":{"role":"server","raft_port":"7002"}},
  {"name":"host-127.0.0.13","address":"127.0.0.13","port":7946,"status":"failed","role":"server","leader":false,"version":"0.1.0-dev","tags":{"role":"server","raft_port":"7002"}}
]`)},
		},
		{
			name:   "IPv6 address is bracketed",
			routes: map[string]http.HandlerFunc{"GET /v1/members": rawReply(`[{"name":"s1","address":"::1","port":7946,"status":"left","role":"server"}]`)},
			args:   []string{"-address=ADDR"},
			checks: []check{exitCode(0), tableIs(
				[]string{"Name", "Address", "Status", "Role", "Leader"},
				[]string{"s1", "[::1]:7946", "left", "server", "false"},
			)},
		},
		{
			name:   "empty pool, table",
			routes: map[string]http.HandlerFunc{"GET /v1/members": rawReply(`[]`)},
			args:   []string{"-address=ADDR"},
			checks: []check{exitCode(0), tableIs([]string{"Name", "Address", "Status", "Role", "Leader"})},
		},
		{
			name:   "null pool, json is an empty list",
			routes: map[string]http.HandlerFunc{"GET /v1/members": rawReply(`null`)},
			args:   []string{"-address=ADDR", "-json"},
			checks: []check{exitCode(0), stdoutIs("[]")},
		},
		{
			name:   "GRID_ADDR is used without -address",
			routes: membersOK,
			env:    "ADDR",
			checks: []check{exitCode(0), stdoutHas("host-127.0.0.11", "127.0.0.21:7946")},
		},
		{
			name:   "-address wins over GRID_ADDR",
			routes: membersOK,
			env:    "DEAD",
			args:   []string{"-address=ADDR", "-json"},
			checks: []check{exitCode(0), stdoutHas(`"name": "agent-001"`)},
		},
		{
			name:   "address without scheme",
			routes: membersOK,
			args:   []string{"-address=HOSTPORT"},
			checks: []check{exitCode(0), stdoutHas("agent-001")},
		},
		{
			name:   "server error",
			routes: map[string]http.HandlerFunc{"GET /v1/members": errorReply(http.StatusInternalServerError, "gossip is not running")},
			args:   []string{"-address=ADDR"},
			checks: []check{failsWith("list members: gossip is not running (HTTP 500)")},
		},
		{
			name:   "server unreachable",
			env:    "DEAD",
			checks: []check{failsWith("list members: GET /v1/members", "connection refused")},
		},
		{
			name:   "malformed answer",
			routes: map[string]http.HandlerFunc{"GET /v1/members": rawReply(`{"oops":`)},
			args:   []string{"-address=ADDR"},
			checks: []check{failsWith("list members:", "decode response")},
		},
		{
			name:   "invalid address",
			args:   []string{"-address=ftp://127.0.0.1:7000"},
			checks: []check{failsWith("scheme must be http or https")},
		},
		{
			name:   "unknown flag",
			args:   []string{"-bogus"},
			checks: []check{usageFails("members", "flag provided but not defined: -bogus")},
		},
		{
			name:   "unexpected argument",
			args:   []string{"extra"},
			checks: []check{usageFails("members", `unexpected argument "extra"`)},
		},
		{
			name:   "help",
			args:   []string{"-help"},
			checks: []check{exitCode(cli.RunResultHelp), noStdout(), noStderr()},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t, tt.routes)
			dead := deadAddress(t)
			env := map[string]string{"": "", "ADDR": f.URL, "DEAD": dead}[tt.env]
			t.Setenv(api.AddressEnv, env)
			r := runCommand(t, "members", substAddr(tt.args, f)...)
			for _, c := range tt.checks {
				c(t, r)
			}
		})
	}
}
