package command

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/api"
)

func TestNodeStatus(t *testing.T) {
	const cmd = "node status"
	header := []string{"ID", "Name", "Agent", "Port", "Status", "PID", "Restarts", "Endpoint"}
	// Three nodes on two agents, not in order: agent-002's, then two of agent-001's.
	n3 := nodeJSON(t, func(n *api.Node) {
		n.ID, n.Agent, n.Port, n.Status, n.PID, n.Endpoint = "n3", "agent-002", 50100, api.NodeLost, 0, ""
	})
	n2 := nodeJSON(t, func(n *api.Node) { n.ID, n.Port, n.Restarts, n.Endpoint = "n2", 50101, 2, "127.0.0.21:50101" })
	n1 := nodeJSON(t, status(api.NodePending), func(n *api.Node) { n.ID = "n1" })
	list := map[string]http.HandlerFunc{"GET /v1/nodes": rawReply("[" + n3 + "," + n2 + "," + n1 + "]")}
	failed := nodeJSON(t, status(api.NodeFailed), exited(-1, "killed"), func(n *api.Node) {
		n.Restarts = 3
		n.Error = "restarted 3 times in 30m; giving up"
		n.Restart = api.RestartPolicy{}
		n.MemoryLimitMB = 0
		n.CPULimit = 1.5
	})
	tests := []struct {
		name   string
		routes map[string]http.HandlerFunc
		args   []string
		env    bool // set GRID_ADDR to the fake server
		checks func(f *fakeAPI) []check
	}{
		{
			name:   "table sorted by agent and port",
			routes: list,
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), requestsAre(f, "GET /v1/nodes"), tableIs(
					header,
					[]string{"n1", "n1", "agent-001", "50100", "pending", "-", "0", "-"},
					[]string{"n2", "n2", "agent-001", "50101", "running", "4242", "2", "127.0.0.21:50101"},
					[]string{"n3", "n3", "agent-002", "50100", "lost", "-", "0", "-"},
				)}
			},
		},
		{
			name:   "json is the sorted list",
			routes: list,
			args:   []string{"-address=ADDR", "-json"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), jsonIs("[" + n1 + "," + n2 + "," + n3 + "]")}
			},
		},
		{
			name: "json field names",
			routes: map[string]http.HandlerFunc{"GET /v1/nodes": rawReply(`[{"id":"n1","agent":"agent-001","port":50100,
				"status":"running","pid":4242,"restarts":1,"endpoint":"127.0.0.21:50100","exit_code":0}]`)},
			args: []string{"-address=ADDR", "-json"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutHas(`"id": "n1"`, `"agent": "agent-001"`, `"port": 50100`,
					`"status": "running"`, `"pid": 4242`, `"restarts": 1`, `"endpoint": "127.0.0.21:50100"`, `"exit_code": 0`)}
			},
		},
		{
			name:   "one agent's nodes",
			routes: map[string]http.HandlerFunc{"GET /v1/nodes": rawReply("[" + n2 + "," + n1 + "]")},
			args:   []string{"-address=ADDR", "-agent=agent-001"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), requestsAre(f, "GET /v1/nodes?agent=agent-001"), tableIs(
					header,
					[]string{"n1", "n1", "agent-001", "50100", "pending", "-", "0", "-"},
					[]string{"n2", "n2", "agent-001", "50101", "running", "4242", "2", "127.0.0.21:50101"},
				)}
			},
		},
		{
			name:   "no nodes",
			routes: map[string]http.HandlerFunc{"GET /v1/nodes": rawReply(`[]`)},
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), tableIs(header)} },
		},
		{
			name:   "null list, json is an empty list",
			routes: map[string]http.HandlerFunc{"GET /v1/nodes": rawReply(`null`)},
			args:   []string{"-address=ADDR", "-json"},
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), stdoutIs("[]")} },
		},
		{
			name:   "one node in detail",
			routes: map[string]http.HandlerFunc{"GET /v1/node/" + testNodeID: rawReply(nodeJSON(t))},
			args:   []string{"-address=ADDR", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), requestsAre(f, "GET /v1/node/"+testNodeID), stdoutIs(strings.Join([]string{
					"ID                = " + testNodeID,
					"Name              = " + testNodeID,
					"Agent             = agent-001",
					"Port              = 50100",
					"Status            = running",
					"PID               = 4242",
					"Restarts          = 0",
					"Endpoint          = 127.0.0.21:50100",
					"Storage Path      = /var/lib/grid/nodes/" + testNodeID,
					"Memory Limit      = 512 MB",
					"CPU Limit         = none",
					"Restart Attempts  = 3",
					"Restart Interval  = 30m",
					"Restart Delay     = 5s",
					"Restart Max Delay = 5m",
					"Exit Code         = -",
					"Signal            = -",
					"Error             = -",
					"Created           = 2024-05-01T11:57:00Z (3m0s ago)",
					"Updated           = 2024-05-01T11:59:30Z (30s ago)",
				}, "\n"))}
			},
		},
		{
			name:   "a failed node in detail",
			routes: map[string]http.HandlerFunc{"GET /v1/node/" + testNodeID: rawReply(failed)},
			args:   []string{"-address=ADDR", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutHas(
					"Status            = failed\n",
					"PID               = -\n",
					"Restarts          = 3\n",
					"Endpoint          = -\n",
					"Memory Limit      = default\n",
					"CPU Limit         = 1.5 cores\n",
					"Restart Attempts  = default\n",
					"Restart Max Delay = default\n",
					"Exit Code         = -1\n",
					"Signal            = killed\n",
					"Error             = restarted 3 times in 30m; giving up\n",
				)}
			},
		},
		{
			name:   "a node limited to one core",
			routes: map[string]http.HandlerFunc{"GET /v1/node/" + testNodeID: rawReply(nodeJSON(t, func(n *api.Node) { n.CPULimit = 1 }))},
			args:   []string{"-address=ADDR", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutHas("Memory Limit      = 512 MB\nCPU Limit         = 1 core\n")}
			},
		},
		{
			name:   "one node, json is a one-element list",
			routes: map[string]http.HandlerFunc{"GET /v1/node/" + testNodeID: rawReply(failed)},
			args:   []string{"-address=ADDR", "-json", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), jsonIs("[" + failed + "]")}
			},
		},
		{
			name:   "unknown node",
			routes: map[string]http.HandlerFunc{"GET /v1/node/nope": errorReply(http.StatusNotFound, `no node "nope"`)},
			args:   []string{"-address=ADDR", "nope"},
			checks: func(f *fakeAPI) []check { return []check{failsWith(`node "nope" not found`)} },
		},
		{
			name:   "GRID_ADDR",
			routes: list,
			env:    true,
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), stdoutHas("agent-002")} },
		},
		{
			name:   "server error",
			routes: map[string]http.HandlerFunc{"GET /v1/nodes": errorReply(http.StatusInternalServerError, "state store closed")},
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check { return []check{failsWith("list nodes: state store closed (HTTP 500)")} },
		},
		{
			name:   "server error for one agent",
			routes: map[string]http.HandlerFunc{"GET /v1/nodes": errorReply(http.StatusInternalServerError, "state store closed")},
			args:   []string{"-address=ADDR", "-agent=agent-001"},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("list nodes of agent-001: state store closed (HTTP 500)")}
			},
		},
		{
			name:   "server error for one node",
			routes: map[string]http.HandlerFunc{"GET /v1/node/n1": errorReply(http.StatusInternalServerError, "state store closed")},
			args:   []string{"-address=ADDR", "n1"},
			checks: func(f *fakeAPI) []check { return []check{failsWith("get node n1: state store closed (HTTP 500)")} },
		},
		{
			name: "-agent with a node",
			args: []string{"-address=ADDR", "-agent=agent-001", "n1"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, "-agent and NODE_ID are mutually exclusive"), requestsAre(f)}
			},
		},
		{
			name: "two nodes",
			args: []string{"-address=ADDR", "n1", "n2"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, `unexpected argument "n2"`), requestsAre(f)}
			},
		},
		{
			name: "empty node",
			args: []string{"-address=ADDR", ""},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, "the NODE_ID must not be empty"), requestsAre(f)}
			},
		},
		{
			name: "flag after the node",
			args: []string{"n1", "-json"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, `unexpected argument "-json": flags must come before arguments`)}
			},
		},
		{
			name:   "help",
			args:   []string{"-help"},
			checks: func(f *fakeAPI) []check { return []check{exitCode(cli.RunResultHelp), noStdout(), noStderr()} },
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
