package command

import (
	"net/http"
	"os"
	"testing"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/api"
)

func TestNodeSpawn(t *testing.T) {
	const cmd = "node spawn"
	const nodePath = "GET /v1/node/" + testNodeID
	const post, poll = "POST /v1/nodes", "GET /v1/node/" + testNodeID
	pending := nodeJSON(t, status(api.NodePending))
	running := nodeJSON(t)
	created := statusReply(http.StatusCreated, pending)
	recorded := "==> Node node-9b1d2c3e recorded; waiting for agent-001 to start it"
	tests := []struct {
		name   string
		routes func(b *bodyRecorder) map[string]http.HandlerFunc
		args   []string
		env    bool // set GRID_ADDR to the fake server
		checks func(f *fakeAPI, b *bodyRecorder) []check
	}{
		{
			name: "waits until the node runs",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{
					post:     b.wrap(created),
					nodePath: sequence(rawReply(pending), rawReply(running)),
				}
			},
			args: []string{"-address=ADDR", "-agent=agent-001", "-port=50100"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{
					exitCode(0),
					stdoutIs("Node " + testNodeID + " is running on agent-001 at 127.0.0.21:50100"),
					stderrIs(recorded),
					requestsAre(f, post, poll, poll),
					b.bodyIs(`{"agent":"agent-001","port":50100,"memory_limit_mb":512,
						"restart_policy":{"attempts":3,"interval":"30m0s","delay":"5s","max_delay":"5m0s"}}`),
				}
			},
		},
		{
			name: "every option is sent",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{post: b.wrap(created), nodePath: rawReply(running)}
			},
			args: []string{"-address=ADDR", "-agent", "agent-001", "-port", "50100", "-storage-path=/data/n1",
				"-memory-limit-mb=2048", "-cpu-limit=1.5", "-restart-attempts=5", "-restart-interval=1h", "-restart-delay=1s",
				"-restart-max-delay=1m", "-role=event-store"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{exitCode(0), b.bodyIs(`{"role":"event-store","agent":"agent-001","port":50100,"storage_path":"/data/n1",
					"memory_limit_mb":2048,"cpu_limit":1.5,"restart_policy":{"attempts":5,"interval":"1h0m0s","delay":"1s","max_delay":"1m0s"}}`)}
			},
		},
		{
			name: "zero values take the server's defaults",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{post: b.wrap(created), nodePath: rawReply(running)}
			},
			args: []string{"-address=ADDR", "-agent=agent-001", "-port=50100", "-memory-limit-mb=0", "-cpu-limit=0",
				"-restart-attempts=0", "-restart-interval=0", "-restart-delay=0", "-restart-max-delay=0"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{exitCode(0), b.bodyIs(`{"agent":"agent-001","port":50100,
					"restart_policy":{"attempts":0,"interval":"0s","delay":"0s","max_delay":"0s"}}`)}
			},
		},
		{
			name: "status changes are shown as they happen",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				crashed := nodeJSON(t, status(api.NodeRestarting), exited(1, ""))
				lost := nodeJSON(t, status(api.NodeLost))
				back := nodeJSON(t, func(n *api.Node) { n.Restarts = 1; n.PID = 4343 })
				return map[string]http.HandlerFunc{
					post:     created,
					nodePath: sequence(rawReply(pending), rawReply(crashed), rawReply(crashed), rawReply(lost), rawReply(back)),
				}
			},
			args: []string{"-address=ADDR", "-agent=agent-001", "-port=50100"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{
					exitCode(0),
					stdoutIs("Node " + testNodeID + " is running on agent-001 at 127.0.0.21:50100"),
					stderrIs(recorded,
						"==> Node node-9b1d2c3e crashed (exit code 1); agent-001 is restarting it (restarts so far: 0)",
						"==> Node node-9b1d2c3e is lost: agent agent-001 is offline; waiting for it to return"),
					requestsAre(f, post, poll, poll, poll, poll, poll),
				}
			},
		},
		{
			name: "json prints the running node",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{post: created, nodePath: rawReply(running)}
			},
			args: []string{"-address=ADDR", "-json", "-agent=agent-001", "-port=50100"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{exitCode(0), jsonIs(running), stderrIs(recorded)}
			},
		},
		{
			name: "the node fails to start",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				failed := nodeJSON(t, status(api.NodeFailed), exited(2, ""),
					func(n *api.Node) { n.Error = "storage exited during its health check" })
				return map[string]http.HandlerFunc{post: created, nodePath: sequence(rawReply(pending), rawReply(failed))}
			},
			args: []string{"-address=ADDR", "-agent=agent-001", "-port=50100"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{noStdout(), stderrHas(recorded), progressThenFails(
					"node " + testNodeID + " failed to start on agent-001: storage exited during its health check")}
			},
		},
		{
			name: "json prints the failed node too",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{post: created, nodePath: rawReply(nodeJSON(t, status(api.NodeFailed)))}
			},
			args: []string{"-address=ADDR", "-agent=agent-001", "-port=50100", "-json"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{jsonIs(nodeJSON(t, status(api.NodeFailed))),
					progressThenFails("failed to start on agent-001: no reason given")}
			},
		},
		{
			name: "the node is stopped before it runs",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{post: created,
					nodePath: sequence(rawReply(nodeJSON(t, status(api.NodeStopping))), rawReply(nodeJSON(t, status(api.NodeStopped))))}
			},
			args: []string{"-address=ADDR", "-agent=agent-001", "-port=50100"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{noStdout(), stderrHas("==> Node node-9b1d2c3e is stopping"),
					progressThenFails("node " + testNodeID + " was stopped before it started")}
			},
		},
		{
			name: "timeout",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{post: created, nodePath: rawReply(pending)}
			},
			args: []string{"-address=ADDR", "-agent=agent-001", "-port=50100", "-timeout=30ms"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{noStdout(), progressThenFails("node " + testNodeID + " is not running after 30ms (status pending); " +
					"it may still start: check with 'grid node status " + testNodeID + "'")}
			},
		},
		{
			name: "interrupted",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				interrupt := func(w http.ResponseWriter, r *http.Request) {
					// Through os.Process, which sends SIGINT here and builds everywhere.
					self, _ := os.FindProcess(os.Getpid())
					_ = self.Signal(os.Interrupt)
					rawReply(pending)(w, r)
				}
				return map[string]http.HandlerFunc{post: created, nodePath: sequence(interrupt, rawReply(pending))}
			},
			args: []string{"-address=ADDR", "-agent=agent-001", "-port=50100"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{noStdout(), progressThenFails("interrupted while node " + testNodeID + " was pending; " +
					"it may still start: check with 'grid node status " + testNodeID + "'")}
			},
		},
		{
			name: "a failed poll is retried",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				noLeader := errorReply(http.StatusServiceUnavailable, "no cluster leader")
				return map[string]http.HandlerFunc{post: created, nodePath: sequence(noLeader, noLeader, rawReply(running))}
			},
			args: []string{"-address=ADDR", "-agent=agent-001", "-port=50100"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{exitCode(0), stdoutHas("is running"),
					stderrIs(recorded, "==> Could not get the status of node node-9b1d2c3e (retrying): no cluster leader (HTTP 503)"),
					requestsAre(f, post, poll, poll, poll)}
			},
		},
		{
			name: "the node disappears",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{post: created}
			},
			args: []string{"-address=ADDR", "-agent=agent-001", "-port=50100"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{noStdout(), progressThenFails("wait for node " + testNodeID + ": node " + testNodeID + " no longer exists")}
			},
		},
		{
			name: "detach prints the ID",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{post: created}
			},
			args: []string{"-address=ADDR", "-agent=agent-001", "-port=50100", "-detach"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{exitCode(0), stdoutIs(testNodeID), progressOnly(),
					stderrHas("grid node status " + testNodeID), requestsAre(f, post)}
			},
		},
		{
			name: "detach, json prints the pending node",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{post: created}
			},
			args: []string{"-address=ADDR", "-agent=agent-001", "-port=50100", "-detach", "-json"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{exitCode(0), jsonIs(pending), stdoutHas(`"id": "`+testNodeID+`"`, `"status": "pending"`,
					`"agent": "agent-001"`, `"port": 50100`, `"pid": 0`, `"restarts": 0`, `"endpoint": ""`),
					requestsAre(f, post)}
			},
		},
		{
			name: "GRID_ADDR",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{post: created}
			},
			env:  true,
			args: []string{"-agent=agent-001", "-port=50100", "-detach"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{exitCode(0), stdoutIs(testNodeID)}
			},
		},
		{
			name: "unknown agent",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{post: errorReply(http.StatusBadRequest, `unknown agent "agent-009"`)}
			},
			args: []string{"-address=ADDR", "-agent=agent-009", "-port=50100"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{failsWith(`spawn node on agent-009: unknown agent "agent-009" (HTTP 400)`), requestsAre(f, post)}
			},
		},
		{
			name: "port taken",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{post: errorReply(http.StatusBadRequest, "port 50100 is taken on agent-001")}
			},
			args: []string{"-address=ADDR", "-agent=agent-001", "-port=50100"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{failsWith("spawn node on agent-001: port 50100 is taken on agent-001 (HTTP 400)")}
			},
		},
		{
			name: "no leader",
			routes: func(b *bodyRecorder) map[string]http.HandlerFunc {
				return map[string]http.HandlerFunc{post: errorReply(http.StatusServiceUnavailable, "no cluster leader")}
			},
			args: []string{"-address=ADDR", "-agent=agent-001", "-port=50100"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{failsWith("spawn node on agent-001: no cluster leader (HTTP 503)")}
			},
		},
		{
			name: "help",
			args: []string{"-help"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{exitCode(cli.RunResultHelp), noStdout(), noStderr()}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			b := &bodyRecorder{}
			var routes map[string]http.HandlerFunc
			if tt.routes != nil {
				routes = tt.routes(b)
			}
			f := newFakeAPI(t, routes)
			if tt.env {
				t.Setenv("GRID_ADDR", f.URL)
			}
			r := runCommand(t, cmd, substAddr(tt.args, f)...)
			for _, c := range tt.checks(f, b) {
				c(t, r)
			}
		})
	}
}

func TestNodeSpawnFlags(t *testing.T) {
	const cmd = "node spawn"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no agent", []string{"-port=50100"}, "-agent is required"},
		{"blank agent", []string{"-agent= ", "-port=50100"}, "-agent is required"},
		{"no port", []string{"-agent=agent-001"}, "-port is required"},
		{"port too high", []string{"-agent=agent-001", "-port=65536"}, "-port must be between 1 and 65535, not 65536"},
		{"negative port", []string{"-agent=agent-001", "-port=-1"}, "-port must be between 1 and 65535, not -1"},
		{"port not a number", []string{"-agent=agent-001", "-port=http"}, `invalid value "http" for flag -port`},
		{"negative memory", []string{"-agent=a", "-port=1", "-memory-limit-mb=-5"}, "-memory-limit-mb must not be negative, not -5"},
		{"negative cpu limit", []string{"-agent=a", "-port=1", "-cpu-limit=-0.5"}, "-cpu-limit must not be negative, not -0.5"},
		{"cpu limit too high", []string{"-agent=a", "-port=1", "-cpu-limit=2000"}, "-cpu-limit must be at most 1024 cores, not 2000"},
		{"cpu limit NaN", []string{"-agent=a", "-port=1", "-cpu-limit=NaN"}, "-cpu-limit must be at most 1024 cores, not NaN"},
		{"cpu limit infinite", []string{"-agent=a", "-port=1", "-cpu-limit=Inf"}, "-cpu-limit must be at most 1024 cores, not +Inf"},
		{"cpu limit not a number", []string{"-agent=a", "-port=1", "-cpu-limit=two"}, `invalid value "two" for flag -cpu-limit`},
		{"negative attempts", []string{"-agent=a", "-port=1", "-restart-attempts=-1"}, "-restart-attempts must not be negative, not -1"},
		{"negative interval", []string{"-agent=a", "-port=1", "-restart-interval=-1m"}, "-restart-interval must not be negative, not -1m0s"},
		{"negative delay", []string{"-agent=a", "-port=1", "-restart-delay=-1s"}, "-restart-delay must not be negative, not -1s"},
		{"negative max delay", []string{"-agent=a", "-port=1", "-restart-max-delay=-1s"}, "-restart-max-delay must not be negative, not -1s"},
		{"delay above max delay", []string{"-agent=a", "-port=1", "-restart-delay=10m"}, "-restart-delay (10m) must not be longer than -restart-max-delay (5m)"},
		{"duration without unit", []string{"-agent=a", "-port=1", "-restart-delay=5"}, `invalid value "5" for flag -restart-delay`},
		{"zero timeout", []string{"-agent=a", "-port=1", "-timeout=0"}, "-timeout must be positive, not 0s"},
		{"unknown role", []string{"-agent=a", "-port=1", "-role=cache"}, `-role must be "event-store" or empty, not "cache"`},
		{"argument", []string{"-agent=a", "-port=1", "node-1"}, `unexpected argument "node-1"`},
		{"flag after an argument", []string{"-agent=a", "x", "-port=1"}, `unexpected argument "-port=1": flags must come before arguments`},
		{"unknown flag", []string{"-memory=5"}, "flag provided but not defined: -memory"},
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
