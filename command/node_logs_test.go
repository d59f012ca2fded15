package command

import (
	"net/http"
	"testing"

	"github.com/hashicorp/cli"
)

func TestNodeLogs(t *testing.T) {
	const cmd = "node logs"
	const logsPath = "GET /v1/node/" + testNodeID + "/logs"
	logs := map[string]http.HandlerFunc{logsPath: rawReply(`{"stdout":"listening on 127.0.0.21:50100\nready\n","stderr":"warning: slow disk\n"}`)}
	tests := []struct {
		name   string
		routes map[string]http.HandlerFunc
		args   []string
		env    bool // set GRID_ADDR to the fake server
		checks func(f *fakeAPI) []check
	}{
		{
			name:   "both logs under headers",
			routes: logs,
			args:   []string{"-address=ADDR", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), requestsAre(f, logsPath+"?lines=100"), stdoutIs(
					"==> stdout <==\nlistening on 127.0.0.21:50100\nready\n\n==> stderr <==\nwarning: slow disk")}
			},
		},
		{
			name:   "stdout only",
			routes: logs,
			args:   []string{"-address=ADDR", "-stdout", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutIs("listening on 127.0.0.21:50100\nready")}
			},
		},
		{
			name:   "stderr only",
			routes: logs,
			args:   []string{"-address=ADDR", "-stderr", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutIs("warning: slow disk")}
			},
		},
		{
			name:   "-stdout and -stderr print both",
			routes: logs,
			args:   []string{"-address=ADDR", "-stdout", "-stderr", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutHas("==> stdout <==\n", "==> stderr <==\n")}
			},
		},
		{
			name:   "number of lines",
			routes: logs,
			args:   []string{"-address=ADDR", "-n=20", testNodeID},
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), requestsAre(f, logsPath+"?lines=20")} },
		},
		{
			name:   "empty logs",
			routes: map[string]http.HandlerFunc{logsPath: rawReply(`{"stdout":"","stderr":"no newline at the end"}`)},
			args:   []string{"-address=ADDR", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutIs("==> stdout <==\n\n==> stderr <==\nno newline at the end")}
			},
		},
		{
			name:   "empty log alone prints nothing",
			routes: map[string]http.HandlerFunc{logsPath: rawReply(`{"stdout":"","stderr":""}`)},
			args:   []string{"-address=ADDR", "-stdout", testNodeID},
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), noStdout(), noStderr()} },
		},
		{
			name:   "json",
			routes: logs,
			args:   []string{"-address=ADDR", "-json", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(),
					jsonIs(`{"stdout":"listening on 127.0.0.21:50100\nready\n","stderr":"warning: slow disk\n"}`)}
			},
		},
		{
			name:   "GRID_ADDR",
			routes: logs,
			env:    true,
			args:   []string{"-stderr", testNodeID},
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), stdoutIs("warning: slow disk")} },
		},
		{
			name:   "unknown node",
			routes: map[string]http.HandlerFunc{"GET /v1/node/nope/logs": errorReply(http.StatusNotFound, `no node "nope"`)},
			args:   []string{"-address=ADDR", "nope"},
			checks: func(f *fakeAPI) []check { return []check{failsWith(`node "nope" not found`)} },
		},
		{
			name:   "agent offline",
			routes: map[string]http.HandlerFunc{logsPath: errorReply(http.StatusBadGateway, "agent agent-001 is offline")},
			args:   []string{"-address=ADDR", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("get logs of node " + testNodeID + ": agent agent-001 is offline (HTTP 502)")}
			},
		},
		{
			name: "no node",
			args: []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, "missing argument: the NODE_ID"), requestsAre(f)}
			},
		},
		{
			name: "zero lines",
			args: []string{"-address=ADDR", "-n=0", testNodeID},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, "-n must be at least 1, not 0"), requestsAre(f)}
			},
		},
		{
			name: "flag after the node",
			args: []string{testNodeID, "-stderr"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, `unexpected argument "-stderr": flags must come before arguments`)}
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
