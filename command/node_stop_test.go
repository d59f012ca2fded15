package command

import (
	"net/http"
	"testing"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/api"
)

func TestNodeStop(t *testing.T) {
	const cmd = "node stop"
	const nodePath = "/v1/node/" + testNodeID
	const del, poll = "DELETE " + nodePath + "?kill_timeout=5s", "GET " + nodePath
	stopping := nodeJSON(t, status(api.NodeStopping))
	stopped := nodeJSON(t, status(api.NodeStopped), exited(0, ""))
	accepted := map[string]http.HandlerFunc{"DELETE " + nodePath: rawReply(stopping)}
	recorded := "==> Stop of node node-9b1d2c3e recorded; waiting for agent-001 to stop it"
	with := func(routes map[string]http.HandlerFunc, pattern string, h http.HandlerFunc) map[string]http.HandlerFunc {
		out := map[string]http.HandlerFunc{pattern: h}
		for k, v := range routes {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name   string
		routes map[string]http.HandlerFunc
		args   []string
		env    bool // set GRID_ADDR to the fake server
		checks func(f *fakeAPI) []check
	}{
		{
			name:   "waits until the node is stopped",
			routes: with(accepted, "GET "+nodePath, sequence(rawReply(stopping), rawReply(stopped))),
			args:   []string{"-address=ADDR", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutIs("Node " + testNodeID + " stopped (exit code 0)"),
					stderrIs(recorded), requestsAre(f, del, poll, poll)}
			},
		},
		{
			name:   "killed after the kill timeout",
			routes: with(accepted, "GET "+nodePath, rawReply(nodeJSON(t, status(api.NodeStopped), exited(-1, "killed")))),
			args:   []string{"-address=ADDR", "-kill-timeout=30s", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutIs("Node " + testNodeID + " stopped (signal killed)"),
					requestsAre(f, "DELETE "+nodePath+"?kill_timeout=30s", poll)}
			},
		},
		{
			name:   "already stopped when the stop is recorded",
			routes: map[string]http.HandlerFunc{"DELETE " + nodePath: rawReply(nodeJSON(t, status(api.NodeStopped)))},
			args:   []string{"-address=ADDR", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutIs("Node " + testNodeID + " stopped"), requestsAre(f, del)}
			},
		},
		{
			name:   "json prints the stopped node",
			routes: with(accepted, "GET "+nodePath, rawReply(stopped)),
			args:   []string{"-address=ADDR", "-json", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), jsonIs(stopped), stderrIs(recorded)}
			},
		},
		{
			name: "the node fails to stop",
			routes: with(accepted, "GET "+nodePath, rawReply(nodeJSON(t, status(api.NodeFailed),
				func(n *api.Node) { n.Error = "kill 4242: operation not permitted" }))),
			args: []string{"-address=ADDR", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{noStdout(), progressThenFails("node " + testNodeID + " failed to stop: kill 4242: operation not permitted")}
			},
		},
		{
			name:   "the agent is offline",
			routes: with(accepted, "GET "+nodePath, rawReply(nodeJSON(t, status(api.NodeLost)))),
			args:   []string{"-address=ADDR", "-timeout=30ms", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{noStdout(), stderrHas("==> Node node-9b1d2c3e is lost: agent agent-001 is offline; waiting for it to return"),
					progressThenFails("node " + testNodeID + " is not stopped after 30ms (status lost); it may still stop: " +
						"check with 'grid node status " + testNodeID + "'")}
			},
		},
		{
			name:   "detach",
			routes: accepted,
			args:   []string{"-address=ADDR", "-detach", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), requestsAre(f, del),
					stdoutIs("Stop of node " + testNodeID + " requested; check with 'grid node status " + testNodeID + "'")}
			},
		},
		{
			name:   "detach, json prints the stopping node",
			routes: accepted,
			args:   []string{"-address=ADDR", "-detach", "-json", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), jsonIs(stopping), requestsAre(f, del)}
			},
		},
		{
			name:   "GRID_ADDR",
			routes: accepted,
			env:    true,
			args:   []string{"-detach", testNodeID},
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), requestsAre(f, del)} },
		},
		{
			name:   "unknown node",
			routes: map[string]http.HandlerFunc{"DELETE /v1/node/nope": errorReply(http.StatusNotFound, `no node "nope"`)},
			args:   []string{"-address=ADDR", "nope"},
			checks: func(f *fakeAPI) []check { return []check{failsWith(`node "nope" not found`)} },
		},
		{
			name:   "already stopped",
			routes: map[string]http.HandlerFunc{"DELETE " + nodePath: errorReply(http.StatusConflict, "node "+testNodeID+" is already stopped")},
			args:   []string{"-address=ADDR", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("stop node " + testNodeID + ": node " + testNodeID + " is already stopped")}
			},
		},
		{
			name:   "no leader",
			routes: map[string]http.HandlerFunc{"DELETE " + nodePath: errorReply(http.StatusServiceUnavailable, "no cluster leader")},
			args:   []string{"-address=ADDR", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("stop node " + testNodeID + ": no cluster leader (HTTP 503)")}
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

func TestNodeStopArgs(t *testing.T) {
	const cmd = "node stop"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no node", nil, "missing argument: the NODE_ID"},
		{"empty node", []string{""}, "the NODE_ID must not be empty"},
		{"two nodes", []string{"n1", "n2"}, `unexpected argument "n2"`},
		{"flag after the node", []string{"n1", "-detach"}, `unexpected argument "-detach": flags must come before arguments`},
		{"zero kill timeout", []string{"-kill-timeout=0", "n1"}, "-kill-timeout must be positive, not 0s"},
		{"negative kill timeout", []string{"-kill-timeout=-1s", "n1"}, "-kill-timeout must be positive, not -1s"},
		{"zero timeout", []string{"-timeout=0s", "n1"}, "-timeout must be positive, not 0s"},
		{"kill timeout without unit", []string{"-kill-timeout=5", "n1"}, `invalid value "5" for flag -kill-timeout`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			f := newFakeAPI(t, nil)
			r := runCommand(t, cmd, append([]string{"-address=" + f.URL}, tt.args...)...)
			usageFails(cmd, tt.want)(t, r)
			requestsAre(f)(t, r)
		})
	}
}
