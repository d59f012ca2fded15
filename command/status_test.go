package command

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/cli"

	"github.com/sutragrid/grid/api"
)

func TestStatus(t *testing.T) {
	const cmd = "status"
	degraded := map[string]http.HandlerFunc{"GET /v1/status": rawReply(statusJSON(t))}
	healthy := statusJSON(t, func(s *api.Status) {
		s.Servers = 1
		s.Leader = api.StatusLeader{Name: "dev", ID: "x", Address: "127.0.0.1:7002"}
		s.Agents = api.StatusAgents{Total: 1, Healthy: 1}
		s.Nodes = api.StatusNodes{Total: 2, Running: 1, Stopped: 1}
		s.ClusterHealth = "cluster_healthy"
		s.Events = api.StatusEvents{LastSeq: 9, ShippedSeq: 9, EventStore: "127.0.0.1:50052,127.0.0.1:50100", StoreReachable: true,
			LastShipped: time.Date(2024, 5, 1, 11, 59, 57, 0, time.UTC),
			Stores: []api.EventStoreStatus{
				{Name: "127.0.0.1:50052", Address: "127.0.0.1:50052", State: api.StoreInSync, AckedSeq: 9, HoldsOutbox: true},
				{Name: "node:n1", Address: "127.0.0.1:50100", Node: "n1", State: api.StoreCatchingUp, AckedSeq: 4,
					BackfillFrom: "127.0.0.1:50052", Fault: "lost data it had acknowledged"},
			}}
	})
	empty := statusJSON(t, func(s *api.Status) {
		s.Servers = 1
		s.Leader = api.StatusLeader{Name: "dev", ID: "x", Address: "127.0.0.1:7002"}
		s.Agents, s.Nodes, s.ClusterHealth = api.StatusAgents{}, api.StatusNodes{}, ""
		s.Events = api.StatusEvents{}
	})
	tests := []struct {
		name   string
		routes map[string]http.HandlerFunc
		args   []string
		env    bool // set GRID_ADDR to the fake server
		checks func(f *fakeAPI) []check
	}{
		{
			name:   "degraded, events waiting",
			routes: degraded,
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), requestsAre(f, "GET /v1/status"), stdoutIs(strings.Join([]string{
					"Leader         = s1 (127.0.0.11:7002)",
					"Servers        = 3",
					"Cluster Health = degraded",
					"Agents         = 3 total: 1 healthy, 1 degraded, 1 offline",
					"Nodes          = 4 total: 1 pending, 2 running, 1 lost",
					"Event Store    = 127.0.0.31:50052 (unreachable)",
					"Events Shipped = 40 of 42",
					"Events Waiting = 2",
					"Last Shipped   = 2024-05-01T11:59:30Z (30s ago)",
					"Last Error     = store events 41-42: connection refused",
				}, "\n"))}
			},
		},
		{
			name:   "healthy, all shipped",
			routes: map[string]http.HandlerFunc{"GET /v1/status": rawReply(healthy)},
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutIs(strings.Join([]string{
					"Leader            = dev (127.0.0.1:7002)",
					"Servers           = 1",
					"Cluster Health    = healthy",
					"Agents            = 1 total: 1 healthy, 0 degraded, 0 offline",
					"Nodes             = 2 total: 1 running, 1 stopped",
					"Event Stores      = 2 total: 1 in-sync, 1 catching-up",
					"  127.0.0.1:50052 = in-sync, holds seq 9 of 9",
					"  node:n1         = catching-up from 127.0.0.1:50052, holds seq 4 of 9, at 127.0.0.1:50100, last fault: lost data it had acknowledged",
					"Events Shipped    = 9 of 9",
					"Events Waiting    = 0",
					"Last Shipped      = 2024-05-01T11:59:57Z (3s ago)",
					"Last Error        = -",
				}, "\n"))}
			},
		},
		{
			name:   "nothing yet, no event store",
			routes: map[string]http.HandlerFunc{"GET /v1/status": rawReply(empty)},
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), stdoutIs(strings.Join([]string{
					"Leader         = dev (127.0.0.1:7002)",
					"Servers        = 1",
					"Cluster Health = no agents",
					"Agents         = 0",
					"Nodes          = 0",
					"Event Store    = none (events wait in the outbox)",
					"Events Shipped = 0 of 0",
					"Events Waiting = 0",
					"Last Shipped   = -",
					"Last Error     = -",
				}, "\n"))}
			},
		},
		{
			name:   "json is the status",
			routes: degraded,
			args:   []string{"-address=ADDR", "-json"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), noStderr(), jsonIs(statusJSON(t))}
			},
		},
		{
			name:   "json field names",
			routes: degraded,
			args:   []string{"-address=ADDR", "-json"},
			checks: func(f *fakeAPI) []check {
				return []check{exitCode(0), stdoutHas(`"leader": {`, `"name": "s1"`, `"id": "8f14e45f-`,
					`"address": "127.0.0.11:7002"`, `"servers": 3`, `"agents": {`, `"total": 3`, `"healthy": 1`,
					`"degraded": 1`, `"offline": 1`, `"nodes": {`, `"pending": 1`, `"running": 2`, `"restarting": 0`,
					`"stopping": 0`, `"stopped": 0`, `"failed": 0`, `"lost": 1`, `"cluster_health": "cluster_degraded"`,
					`"events": {`, `"last_seq": 42`, `"shipped_seq": 40`, `"waiting": 2`,
					`"event_store": "127.0.0.31:50052"`, `"store_reachable": false`,
					`"last_error": "store events 41-42: connection refused"`, `"last_shipped": "2024-05-01T11:59:30Z"`)}
			},
		},
		{
			name:   "GRID_ADDR",
			routes: degraded,
			env:    true,
			checks: func(f *fakeAPI) []check { return []check{exitCode(0), stdoutHas("Leader         = s1")} },
		},
		{
			name:   "no leader",
			routes: map[string]http.HandlerFunc{"GET /v1/status": errorReply(http.StatusServiceUnavailable, "no cluster leader")},
			args:   []string{"-address=ADDR"},
			checks: func(f *fakeAPI) []check { return []check{failsWith("get status: no cluster leader (HTTP 503)")} },
		},
		{
			name: "server down",
			args: []string{"-address=DEAD"},
			checks: func(f *fakeAPI) []check {
				return []check{failsWith("get status: GET /v1/status:", "connection refused")}
			},
		},
		{
			name: "an argument",
			args: []string{"-address=ADDR", "agent-001"},
			checks: func(f *fakeAPI) []check {
				return []check{usageFails(cmd, `unexpected argument "agent-001"`), requestsAre(f)}
			},
		},
		{
			name:   "unknown flag",
			args:   []string{"-verbose"},
			checks: func(f *fakeAPI) []check { return []check{usageFails(cmd, "-verbose"), requestsAre(f)} },
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
			args := substAddr(tt.args, f)
			for i, a := range args {
				args[i] = strings.ReplaceAll(a, "DEAD", deadAddress(t))
			}
			r := runCommand(t, cmd, args...)
			for _, c := range tt.checks(f) {
				c(t, r)
			}
		})
	}
}

func TestStatusInCLI(t *testing.T) {
	r := runCLI(t, "status", "-help")
	if r.code != cli.RunResultHelp && r.code != 0 {
		t.Errorf("exit code %d", r.code)
	}
	if !strings.Contains(r.stdout, "Usage: grid status") {
		t.Errorf("help output %q", r.stdout)
	}
	r = runCLI(t, "-help")
	if !strings.Contains(r.stdout+r.stderr, "status") {
		t.Errorf("grid -help does not list status: %q", r.stdout+r.stderr)
	}
}

func TestStatusFlagsAnOutboxOverItsBound(t *testing.T) {
	ev := api.StatusEvents{Waiting: 1200, OutboxLimit: 1000, OverLimit: true}
	if got := waiting(ev); !strings.Contains(got, "1200") || !strings.Contains(got, "over the outbox bound of 1000") {
		t.Fatalf("waiting(%+v) = %q", ev, got)
	}
	if got := waiting(api.StatusEvents{Waiting: 3, OutboxLimit: 1000}); got != "3" {
		t.Fatalf("under the bound: %q", got)
	}
}
