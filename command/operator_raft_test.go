package command

import (
	"net/http"
	"testing"

	"github.com/hashicorp/cli"
)

// raftFixture is a three-server configuration as GET /v1/operator/raft/configuration
// returns it; the third server is unknown to gossip.
const raftFixture = `{"servers":[
  {"node":"host-127.0.0.11","id":"9f3c2a10-0000-4000-8000-000000000011","address":"127.0.0.11:7002","state":"leader","leader":true,"voter":true,"raft_protocol":"3"},
  {"node":"host-127.0.0.12","id":"9f3c2a10-0000-4000-8000-000000000012","address":"127.0.0.12:7002","state":"follower","leader":false,"voter":true,"raft_protocol":"3"},
  {"node":"","id":"9f3c2a10-0000-4000-8000-000000000013","address":"127.0.0.13:7002","state":"follower","leader":false,"voter":false,"raft_protocol":"3"}
],"index":42}`

func TestOperatorRaftListPeers(t *testing.T) {
	const cmd = "operator raft list-peers"
	ok := map[string]http.HandlerFunc{"GET /v1/operator/raft/configuration": rawReply(raftFixture)}
	tests := []struct {
		name   string
		routes map[string]http.HandlerFunc
		args   []string
		env    bool // set GRID_ADDR to the fake server
		checks []check
	}{
		{
			name:   "table",
			routes: ok,
			args:   []string{"-address=ADDR"},
			checks: []check{exitCode(0), noStderr(), tableIs(
				[]string{"Node", "ID", "Address", "State", "Voter", "RaftProtocol"},
				[]string{"host-127.0.0.11", "9f3c2a10-0000-4000-8000-000000000011", "127.0.0.11:7002", "leader", "true", "3"},
				[]string{"host-127.0.0.12", "9f3c2a10-0000-4000-8000-000000000012", "127.0.0.12:7002", "follower", "true", "3"},
				[]string{"(unknown)", "9f3c2a10-0000-4000-8000-000000000013", "127.0.0.13:7002", "follower", "false", "3"},
			)},
		},
		{
			name:   "json is the list of servers",
			routes: ok,
			args:   []string{"-json", "-address=ADDR"},
			checks: []check{exitCode(0), noStderr(), jsonIs(`[
  {"node":"host-127.0.0.11","id":"9f3c2a10-0000-4000-8000-000000000011","address":"127.0.0.11:7002","state":"leader","leader":true,"voter":true,"raft_protocol":"3"},
  {"node":"host-127.0.0.12","id":"9f3c2a10-0000-4000-8000-000000000012","address":"127.0.0.12:7002","state":"follower","leader":false,"voter":true,"raft_protocol":"3"},
  {"node":"","id":"9f3c2a10-0000-4000-8000-000000000013","address":"127.0.0.13:7002","state":"follower","leader":false,"voter":false,"raft_protocol":"3"}
]`)},
		},
		{
			name:   "no servers, json is an empty list",
			routes: map[string]http.HandlerFunc{"GET /v1/operator/raft/configuration": rawReply(`{"servers":null,"index":0}`)},
			args:   []string{"-address=ADDR", "-json"},
			checks: []check{exitCode(0), stdoutIs("[]")},
		},
		{
			name:   "GRID_ADDR",
			routes: ok,
			env:    true,
			checks: []check{exitCode(0), stdoutHas("127.0.0.12:7002")},
		},
		{
			name:   "no leader",
			routes: map[string]http.HandlerFunc{"GET /v1/operator/raft/configuration": errorReply(http.StatusServiceUnavailable, "no cluster leader")},
			args:   []string{"-address=ADDR"},
			checks: []check{failsWith("list Raft peers: no cluster leader (HTTP 503)")},
		},
		{
			name:   "error without JSON body",
			routes: map[string]http.HandlerFunc{"GET /v1/operator/raft/configuration": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }},
			args:   []string{"-address=ADDR"},
			checks: []check{failsWith("list Raft peers: Bad Gateway (HTTP 502)")},
		},
		{
			name:   "unknown flag",
			args:   []string{"-stale"},
			checks: []check{usageFails(cmd, "-stale")},
		},
		{
			name:   "flag after an argument",
			args:   []string{"now", "-json"},
			checks: []check{usageFails(cmd, `unexpected argument "-json": flags must come before arguments`)},
		},
		{
			name:   "help",
			args:   []string{"-h"},
			checks: []check{exitCode(cli.RunResultHelp), noStdout(), noStderr()},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			f := newFakeAPI(t, tt.routes)
			if tt.env {
				t.Setenv("GRID_ADDR", f.URL)
			}
			r := runCommand(t, cmd, substAddr(tt.args, f)...)
			for _, c := range tt.checks {
				c(t, r)
			}
		})
	}
}

func TestOperatorRaftRemovePeer(t *testing.T) {
	const cmd = "operator raft remove-peer"
	ok := map[string]http.HandlerFunc{"DELETE /v1/operator/raft/peer": func(w http.ResponseWriter, r *http.Request) {}}
	tests := []struct {
		name   string
		routes map[string]http.HandlerFunc
		args   []string
		env    bool
		checks func(f *fakeAPI) []check
	}{
		{
			name:   "by id",
			routes: ok,
			args:   []string{"-address=ADDR", "-peer-id=9f3c2a10-13"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutIs(`Removed Raft peer with ID "9f3c2a10-13"`),
					requestsAre(f, "DELETE /v1/operator/raft/peer?id=9f3c2a10-13")}
			},
		},
		{
			name:   "by address",
			routes: ok,
			args:   []string{"-address=ADDR", "-peer-address=127.0.0.13:7002"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutIs(`Removed Raft peer with address "127.0.0.13:7002"`),
					requestsAre(f, "DELETE /v1/operator/raft/peer?address=127.0.0.13%3A7002")}
			},
		},
		{
			name:   "json",
			routes: ok,
			args:   []string{"-address=ADDR", "-json", "-peer-id", "s3"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), jsonIs(`{"id":"s3","removed":true}`),
					requestsAre(f, "DELETE /v1/operator/raft/peer?id=s3")}
			},
		},
		{
			name:   "GRID_ADDR",
			routes: ok,
			env:    true,
			args:   []string{"-peer-id=s3"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), requestsAre(f, "DELETE /v1/operator/raft/peer?id=s3")}
			},
		},
		{
			name:   "unknown peer",
			routes: map[string]http.HandlerFunc{"DELETE /v1/operator/raft/peer": errorReply(http.StatusNotFound, `no Raft peer with ID "s9"`)},
			args:   []string{"-address=ADDR", "-peer-id=s9"},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith(`remove Raft peer with ID "s9": no Raft peer with ID "s9" (HTTP 404)`)}
			},
		},
		{
			name:   "no leader",
			routes: map[string]http.HandlerFunc{"DELETE /v1/operator/raft/peer": errorReply(http.StatusServiceUnavailable, "no cluster leader")},
			args:   []string{"-address=ADDR", "-peer-address=127.0.0.13:7002"},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith(`remove Raft peer with address "127.0.0.13:7002": no cluster leader (HTTP 503)`)}
			},
		},
		{
			name: "neither id nor address",
			args: []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, "one of -peer-id or -peer-address is required"), requestsAre(f)}
			},
		},
		{
			name: "both id and address",
			args: []string{"-address=ADDR", "-peer-id=s3", "-peer-address=127.0.0.13:7002"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, "mutually exclusive"), requestsAre(f)}
			},
		},
		{
			name: "address without port",
			args: []string{"-address=ADDR", "-peer-address=127.0.0.13"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, `invalid -peer-address "127.0.0.13": want host:port`), requestsAre(f)}
			},
		},
		{
			name: "positional argument",
			args: []string{"-address=ADDR", "s3"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, `unexpected argument "s3"`), requestsAre(f)}
			},
		},
		{
			name: "flag without value",
			args: []string{"-peer-id"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, "flag needs an argument: -peer-id")}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			f := newFakeAPI(t, tt.routes)
			if tt.env {
				t.Setenv("GRID_ADDR", f.URL)
			}
			r := runCommand(t, cmd, substAddr(tt.args, f)...)
			for _, c := range tt.checks(f) {
				c(t, r)
			}
		})
	}
}
