package command

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/hashicorp/cli"
)

// autopilotConfigFixture is a configuration as GET
// /v1/operator/autopilot/configuration returns it.
const autopilotConfigFixture = `{"cleanup_dead_servers":true,"dead_server_cleanup_after":"1h0m0s",
  "last_contact_threshold":"200ms","max_trailing_logs":250,"min_quorum":0,
  "server_stabilization_time":"10s","create_index":5,"modify_index":7}`

// autopilotHealthFixture is a grid of three servers, one of them dead.
const autopilotHealthFixture = `{"healthy":false,"failure_tolerance":0,"leader":"id-1","voters":["id-1","id-2","id-3"],"servers":[
  {"id":"id-1","name":"s1","address":"127.0.0.51:7002","serf_status":"alive","version":"0.1.0","leader":true,"voter":true,"raft_state":"leader","last_contact":"0s","last_term":3,"last_index":120,"healthy":true,"stable_since":"2026-12-01T10:00:00Z"},
  {"id":"id-2","name":"s2","address":"127.0.0.52:7002","serf_status":"alive","version":"0.1.0","leader":false,"voter":true,"raft_state":"voter","last_contact":"12.345ms","last_term":3,"last_index":120,"healthy":true,"stable_since":"2026-12-01T10:00:01Z"},
  {"id":"id-3","name":"s3","address":"127.0.0.53:7002","serf_status":"failed","version":"0.1.0","leader":false,"voter":true,"raft_state":"voter","last_contact":"0s","last_term":2,"last_index":90,"healthy":false,"stable_since":"2026-12-01T10:05:00Z"}
]}`

func TestOperatorAutopilotGetConfig(t *testing.T) {
	const cmd = "operator autopilot get-config"
	ok := map[string]http.HandlerFunc{"GET /v1/operator/autopilot/configuration": rawReply(autopilotConfigFixture)}
	runAPICases(t, cmd, []apiCase{
		{
			name:   "lines",
			routes: ok,
			args:   []string{"-address=ADDR"},
			checks: func(*fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutIs(`CleanupDeadServers       =  true
DeadServerCleanupAfter   =  1h0m0s
LastContactThreshold     =  200ms
MaxTrailingLogs          =  250
MinQuorum                =  0
ServerStabilizationTime  =  10s
ModifyIndex              =  7`)}
			},
		},
		{
			name:   "json",
			routes: ok,
			args:   []string{"-json", "-address=ADDR"},
			checks: func(*fakeAPI) []check { return []check{exitCode(0), noStderr(), jsonIs(autopilotConfigFixture)} },
		},
		{
			name:   "no leader",
			routes: map[string]http.HandlerFunc{"GET /v1/operator/autopilot/configuration": errorReply(http.StatusServiceUnavailable, "no cluster leader")},
			args:   []string{"-address=ADDR"},
			checks: func(*fakeAPI) []check {
				return []check{failsWith("get the autopilot configuration: no cluster leader (HTTP 503)")}
			},
		},
		{
			name:   "permission denied",
			routes: map[string]http.HandlerFunc{"GET /v1/operator/autopilot/configuration": errorReply(http.StatusForbidden, "permission denied: needs operator read")},
			args:   []string{"-address=ADDR"},
			checks: func(*fakeAPI) []check { return []check{failsWith("needs operator read", "HTTP 403")} },
		},
		{
			name:   "unexpected argument",
			args:   []string{"now"},
			checks: func(*fakeAPI) []check { return []check{usageFails(cmd, `unexpected argument "now"`)} },
		},
		{
			name:   "help",
			args:   []string{"-h"},
			checks: func(*fakeAPI) []check { return []check{exitCode(cli.RunResultHelp), noStdout(), noStderr()} },
		},
	})
}

func TestOperatorAutopilotSetConfig(t *testing.T) {
	const cmd = "operator autopilot set-config"
	tests := []struct {
		name   string
		args   []string
		put    http.HandlerFunc // nil: the PUT echoes the body back with modify index 9
		checks func(f *fakeAPI, b *bodyRecorder) []check
	}{
		{
			name: "changes only the settings given, as a check-and-set on the index read",
			args: []string{"-address=ADDR", "-json", "-server-stabilization-time=30s", "-min-quorum=3", "-cleanup-dead-servers=false"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{exitCode(0), noStderr(),
					requestsAre(f, "GET /v1/operator/autopilot/configuration", "PUT /v1/operator/autopilot/configuration?cas=7"),
					b.bodyIs(`{"cleanup_dead_servers":false,"dead_server_cleanup_after":"1h0m0s","last_contact_threshold":"200ms",
						"max_trailing_logs":250,"min_quorum":3,"server_stabilization_time":"30s","create_index":5,"modify_index":7}`),
					jsonIs(`{"cleanup_dead_servers":false,"dead_server_cleanup_after":"1h0m0s","last_contact_threshold":"200ms",
						"max_trailing_logs":250,"min_quorum":3,"server_stabilization_time":"30s","create_index":5,"modify_index":9}`)}
			},
		},
		{
			name: "a bool flag alone is true",
			args: []string{"-address=ADDR", "-cleanup-dead-servers", "-dead-server-cleanup-after=0s"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{exitCode(0), noStderr(), stdoutHas("CleanupDeadServers       =  true", "DeadServerCleanupAfter   =  0s", "ModifyIndex              =  9")}
			},
		},
		{
			name: "lost the check-and-set",
			args: []string{"-address=ADDR", "-max-trailing-logs=100"},
			put:  errorReply(http.StatusConflict, "check-and-set index 7, but it was last changed at 8"),
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{failsWith("it changed while this command ran; run it again"), noStdout()}
			},
		},
		{
			name: "refused",
			args: []string{"-address=ADDR", "-max-trailing-logs=100"},
			put:  errorReply(http.StatusForbidden, "permission denied: needs operator write"),
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{failsWith("set the autopilot configuration: permission denied: needs operator write (HTTP 403)")}
			},
		},
		{
			name: "nothing to change",
			args: []string{"-address=ADDR"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{usageFails(cmd, "give at least one setting to change"), requestsAre(f)}
			},
		},
		{
			name: "bad duration",
			args: []string{"-address=ADDR", "-server-stabilization-time=soon"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{usageFails(cmd, "-server-stabilization-time", "want a duration"), requestsAre(f)}
			},
		},
		{
			name: "negative duration",
			args: []string{"-address=ADDR", "-dead-server-cleanup-after=-1s"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{usageFails(cmd, "must not be negative"), requestsAre(f)}
			},
		},
		{
			name: "zero last-contact threshold",
			args: []string{"-address=ADDR", "-last-contact-threshold=0s"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{usageFails(cmd, "-last-contact-threshold must be positive"), requestsAre(f)}
			},
		},
		{
			name: "bad count",
			args: []string{"-address=ADDR", "-min-quorum=-1"},
			checks: func(f *fakeAPI, b *bodyRecorder) []check {
				return []check{usageFails(cmd, "-min-quorum", "want a whole number"), requestsAre(f)}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			b := &bodyRecorder{}
			put := tt.put
			if put == nil {
				// The recorder has read the body: echo the recorded one back.
				put = func(w http.ResponseWriter, r *http.Request) {
					b.mu.Lock()
					body := b.bodies[len(b.bodies)-1]
					b.mu.Unlock()
					var in map[string]any
					if err := json.Unmarshal([]byte(body), &in); err != nil {
						t.Errorf("PUT body: %v", err)
					}
					in["modify_index"] = 9
					out, _ := json.Marshal(in)
					rawReply(string(out))(w, r)
				}
			}
			f := newFakeAPI(t, map[string]http.HandlerFunc{
				"GET /v1/operator/autopilot/configuration": rawReply(autopilotConfigFixture),
				"PUT /v1/operator/autopilot/configuration": b.wrap(put),
			})
			r := runCommand(t, cmd, substAddr(tt.args, f)...)
			for _, c := range tt.checks(f, b) {
				c(t, r)
			}
		})
	}
}

func TestOperatorAutopilotHealth(t *testing.T) {
	const cmd = "operator autopilot health"
	healthy := `{"healthy":true,"failure_tolerance":1,"leader":"id-1","voters":["id-1"],"servers":[
	  {"id":"id-1","name":"s1","address":"127.0.0.51:7002","serf_status":"alive","version":"0.1.0","leader":true,"voter":true,"raft_state":"leader","last_contact":"0s","last_term":3,"last_index":120,"healthy":true,"stable_since":"2026-12-01T10:00:00Z"}]}`
	runAPICases(t, cmd, []apiCase{
		{
			name:   "unhealthy: table and exit code 2",
			routes: map[string]http.HandlerFunc{"GET /v1/operator/autopilot/health": rawReply(autopilotHealthFixture)},
			args:   []string{"-address=ADDR"},
			checks: func(*fakeAPI) []check {
				return []check{exitCode(2), noStderr(), stdoutIs(`Grid unhealthy, failure tolerance 0
Node  ID    Address          Status  RaftState  LastContact  LastTerm  LastIndex  Healthy  StableSince
s1    id-1  127.0.0.51:7002  alive   leader     0s           3         120        true     2026-12-01T10:00:00Z
s2    id-2  127.0.0.52:7002  alive   voter      12ms         3         120        true     2026-12-01T10:00:01Z
s3    id-3  127.0.0.53:7002  failed  voter      -            2         90         false    2026-12-01T10:05:00Z`)}
			},
		},
		{
			name:   "unhealthy json keeps exit code 2",
			routes: map[string]http.HandlerFunc{"GET /v1/operator/autopilot/health": rawReply(autopilotHealthFixture)},
			args:   []string{"-address=ADDR", "-json"},
			checks: func(*fakeAPI) []check { return []check{exitCode(2), noStderr(), jsonIs(autopilotHealthFixture)} },
		},
		{
			name:   "healthy",
			routes: map[string]http.HandlerFunc{"GET /v1/operator/autopilot/health": rawReply(healthy)},
			args:   []string{"-address=ADDR"},
			checks: func(*fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutHas("Grid healthy, failure tolerance 1")}
			},
		},
		{
			name:   "no autopilot state yet",
			routes: map[string]http.HandlerFunc{"GET /v1/operator/autopilot/health": errorReply(http.StatusServiceUnavailable, "autopilot has not judged the servers yet")},
			args:   []string{"-address=ADDR"},
			checks: func(*fakeAPI) []check {
				return []check{exitCode(1), noStdout(), failsWith("get the autopilot health: autopilot has not judged the servers yet (HTTP 503)")}
			},
		},
		{
			name:   "help",
			args:   []string{"-help"},
			checks: func(*fakeAPI) []check { return []check{exitCode(cli.RunResultHelp), noStdout(), noStderr()} },
		},
	})
}
