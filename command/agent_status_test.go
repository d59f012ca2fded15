package command

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/cli"
)

func TestAgentStatus(t *testing.T) {
	const cmd = "agent status"
	header := []string{"Name", "Address", "Status", "Nodes", "Last", "heartbeat", "Version"}
	list := map[string]http.HandlerFunc{"GET /v1/agents": rawReply("[" + agent002 + "," + agent003 + "," + agent001 + "]")}
	one := map[string]http.HandlerFunc{"GET /v1/agent/agent-001": rawReply(agent001)}
	isolated := withField(agent001, `"isolation":"cgroup v1 under /system.slice/grid-agent.service"`)
	tests := []struct {
		name   string
		routes map[string]http.HandlerFunc
		args   []string
		env    bool // set GRID_ADDR to the fake server
		checks func(f *fakeAPI) []check
	}{
		{
			name:   "table sorted by name",
			routes: list,
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), requestsAre(f, "GET /v1/agents"), tableIs(
					header,
					[]string{"agent-001", "127.0.0.21:8001", "healthy", "2/10", "3s", "ago", "0.1.0-dev"},
					[]string{"agent-002", "127.0.0.22:8001", "degraded", "0/4", "1m10s", "ago", "0.1.0-dev"},
					[]string{"agent-003", "127.0.0.23:8001", "offline", "0", "never", "0.0.9"},
				)}
			},
		},
		{
			name:   "json is the sorted list",
			routes: list,
			args:   []string{"-address=ADDR", "-json"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), jsonIs("[" + agent001 + "," + agent002 + "," + agent003 + "]")}
			},
		},
		{
			name:   "json field names",
			routes: map[string]http.HandlerFunc{"GET /v1/agents": rawReply(`[{"name":"a","address":"127.0.0.21:8001","status":"healthy","nodes":1,"max_nodes":2,"last_heartbeat":"2024-05-01T11:59:57Z"}]`)},
			args:   []string{"-address=ADDR", "-json"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutHas(`"name": "a"`, `"address": "127.0.0.21:8001"`, `"status": "healthy"`,
					`"nodes": 1`, `"max_nodes": 2`, `"last_heartbeat": "2024-05-01T11:59:57Z"`)}
			},
		},
		{
			name:   "one agent",
			routes: one,
			args:   []string{"-address=ADDR", "agent-001"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), requestsAre(f, "GET /v1/agent/agent-001"), tableIs(
					header,
					[]string{"agent-001", "127.0.0.21:8001", "healthy", "2/10", "3s", "ago", "0.1.0-dev"},
				)}
			},
		},
		{
			name:   "one agent and its isolation",
			routes: map[string]http.HandlerFunc{"GET /v1/agent/agent-001": rawReply(isolated)},
			args:   []string{"-address=ADDR", "agent-001"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutIs(strings.Join([]string{
					"Name       Address          Status   Nodes  Last heartbeat  Version",
					"agent-001  127.0.0.21:8001  healthy  2/10   3s ago          0.1.0-dev",
					"",
					"Isolation = cgroup v1 under /system.slice/grid-agent.service",
				}, "\n"))}
			},
		},
		{
			name: "one agent without isolation",
			routes: map[string]http.HandlerFunc{"GET /v1/agent/agent-001": rawReply(withField(agent001,
				`"isolation":"none: the agent's cgroup is not delegated to it"`))},
			args: []string{"-address=ADDR", "agent-001"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutHas("\n\nIsolation = none: the agent's cgroup is not delegated to it\n")}
			},
		},
		{
			name:   "the list leaves the isolation out",
			routes: map[string]http.HandlerFunc{"GET /v1/agents": rawReply("[" + isolated + "," + agent002 + "]")},
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutLacks("Isolation", "cgroup")}
			},
		},
		{
			name:   "one agent and its isolation, json",
			routes: map[string]http.HandlerFunc{"GET /v1/agent/agent-001": rawReply(isolated)},
			args:   []string{"-json", "-address=ADDR", "agent-001"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), jsonIs("[" + isolated + "]"),
					stdoutHas(`"isolation": "cgroup v1 under /system.slice/grid-agent.service"`)}
			},
		},
		{
			name:   "one agent, json is a one-element list",
			routes: one,
			args:   []string{"-json", "-address=ADDR", "agent-001"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), jsonIs("[" + agent001 + "]")}
			},
		},
		{
			name:   "unknown agent",
			routes: map[string]http.HandlerFunc{"GET /v1/agent/agent-009": errorReply(http.StatusNotFound, `no agent "agent-009"`)},
			args:   []string{"-address=ADDR", "agent-009"},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith(`agent "agent-009" not found`)}
			},
		},
		{
			name:   "no agents",
			routes: map[string]http.HandlerFunc{"GET /v1/agents": rawReply(`[]`)},
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), tableIs(header)} },
		},
		{
			name:   "null list, json is an empty list",
			routes: map[string]http.HandlerFunc{"GET /v1/agents": rawReply(`null`)},
			args:   []string{"-address=ADDR", "-json"},
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), stdoutIs("[]")} },
		},
		{
			name:   "GRID_ADDR",
			routes: list,
			env:    true,
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), stdoutHas("agent-003")} },
		},
		{
			name:   "server error",
			routes: map[string]http.HandlerFunc{"GET /v1/agents": errorReply(http.StatusInternalServerError, "state store closed")},
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("list agents: state store closed (HTTP 500)")}
			},
		},
		{
			name:   "server error for one agent",
			routes: map[string]http.HandlerFunc{"GET /v1/agent/agent-001": errorReply(http.StatusInternalServerError, "state store closed")},
			args:   []string{"-address=ADDR", "agent-001"},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("get agent agent-001: state store closed (HTTP 500)")}
			},
		},
		{
			name: "server unreachable",
			args: []string{"-address=" + deadAddress(t)},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("list agents: GET /v1/agents", "connection refused")}
			},
		},
		{
			name: "two names",
			args: []string{"-address=ADDR", "agent-001", "agent-002"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, `unexpected argument "agent-002"`), requestsAre(f)}
			},
		},
		{
			name: "flag after the name",
			args: []string{"agent-001", "-json"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, `unexpected argument "-json": flags must come before arguments`)}
			},
		},
		{
			name: "empty name",
			args: []string{"-address=ADDR", ""},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, "the NAME must not be empty"), requestsAre(f)}
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

// withField adds a field, `"name":value`, to the JSON object obj.
func withField(obj, field string) string {
	return strings.TrimSuffix(obj, "}") + "," + field + "}"
}
