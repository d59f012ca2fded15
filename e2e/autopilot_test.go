//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// autopilotIPs are the five servers of TestAutopilotReplacesDeadServer, and
// autopilotSpare the one that replaces a dead one: addresses no other test uses.
var (
	autopilotIPs   = []string{"127.0.0.51", "127.0.0.52", "127.0.0.53", "127.0.0.54", "127.0.0.55"}
	autopilotSpare = "127.0.0.56"
)

// apHealth is what `grid operator autopilot health -json` prints, in part.
type apHealth struct {
	Healthy          bool `json:"healthy"`
	FailureTolerance int  `json:"failure_tolerance"`
	Servers          []struct {
		Name       string `json:"name"`
		SerfStatus string `json:"serf_status"`
		RaftState  string `json:"raft_state"`
		Healthy    bool   `json:"healthy"`
	} `json:"servers"`
}

// autopilotHealth runs `grid operator autopilot health -json` and checks that its
// exit code agrees with the health it prints: 0 healthy, 2 not.
func autopilotHealth(ip string) (apHealth, error) {
	var h apHealth
	stdout, stderr, code := grid("operator", "autopilot", "health", "-json", address(ip))
	if code != 0 && code != 2 {
		return h, fmt.Errorf("exit %d: %s", code, strings.TrimSpace(stderr))
	}
	if err := json.Unmarshal([]byte(stdout), &h); err != nil {
		return h, fmt.Errorf("decode %q: %w", stdout, err)
	}
	if h.Healthy != (code == 0) {
		return h, fmt.Errorf("healthy=%v but exit code %d", h.Healthy, code)
	}
	return h, nil
}

// TestAutopilotReplacesDeadServer runs five `grid server` processes, kills one for
// good, and starts a new one with a fresh data directory: the new one joins as a
// non-voter and is promoted after the stabilization time, the dead one is removed
// once it is replaced and not before.
// The configuration set through one server is what another reads.
func TestAutopilotReplacesDeadServer(t *testing.T) {
	dir := t.TempDir()
	procs := map[string]*proc{}
	run := func(ip string, flags ...string) {
		args := append([]string{"server", "-bind=" + ip, "-name=server-" + ip,
			"-data-dir=" + filepath.Join(dir, ip), "-join=" + autopilotIPs[0], "-retry-interval=200ms",
			"-autopilot-server-stabilization-time=3s", "-autopilot-dead-server-cleanup-after=0s"}, flags...)
		procs[ip] = start(t, "server "+ip, args...)
	}
	for _, ip := range autopilotIPs {
		run(ip, "-bootstrap-expect=5")
	}
	peersOf := func(ip string) (voters map[string]bool, all map[string]bool, leader string, err error) {
		var ps []peer
		if err := gridJSON(&ps, "operator", "raft", "list-peers", address(ip)); err != nil {
			return nil, nil, "", err
		}
		voters, all = map[string]bool{}, map[string]bool{}
		for _, p := range ps {
			all[p.Node] = true
			if p.Voter {
				voters[p.Node] = true
			}
			if p.State == "leader" {
				leader = p.Node
			}
		}
		return voters, all, leader, nil
	}
	var leader string
	cliPoll.WaitFor(t, 60*time.Second, "five voters and a leader", func() error {
		voters, _, l, err := peersOf(autopilotIPs[0])
		if err != nil {
			return err
		}
		if len(voters) != 5 || l == "" {
			return fmt.Errorf("voters %v, leader %q", voters, l)
		}
		leader = l
		return nil
	})

	// The configuration: set through one server, read through another.
	if out, stderr, code := grid("operator", "autopilot", "set-config", "-max-trailing-logs=500", address(autopilotIPs[1])); code != 0 ||
		!strings.Contains(out, "MaxTrailingLogs          =  500") {
		t.Fatalf("set-config: exit %d\n%s%s", code, out, stderr)
	}
	var conf struct {
		MaxTrailingLogs         int    `json:"max_trailing_logs"`
		ServerStabilizationTime string `json:"server_stabilization_time"`
	}
	if err := gridJSON(&conf, "operator", "autopilot", "get-config", address(autopilotIPs[4])); err != nil {
		t.Fatal(err)
	}
	if conf.MaxTrailingLogs != 500 || conf.ServerStabilizationTime != "3s" {
		t.Fatalf("get-config after set-config: %+v", conf)
	}

	// Kill a follower for good.
	var victim string
	for _, ip := range autopilotIPs {
		if "server-"+ip != leader && ip != autopilotIPs[0] {
			victim = ip
			break
		}
	}
	procs[victim].kill()
	alive := []string{}
	for _, ip := range autopilotIPs {
		if ip != victim {
			alive = append(alive, ip)
		}
	}
	cliPoll.WaitFor(t, 60*time.Second, "autopilot to see server-"+victim+" failed", func() error {
		h, err := autopilotHealth(alive[0])
		if err != nil {
			return err
		}
		for _, s := range h.Servers {
			if s.Name == "server-"+victim && s.SerfStatus == "failed" && !s.Healthy && !h.Healthy && h.FailureTolerance == 1 {
				return nil
			}
		}
		return fmt.Errorf("health %+v", h)
	})
	if _, all, _, err := peersOf(alive[0]); err != nil || !all["server-"+victim] {
		t.Fatalf("server-%s removed before it was replaced: %v %v", victim, all, err)
	}

	// A new server with a fresh data directory replaces it.
	run(autopilotSpare)
	sawNonVoter := false
	cliPoll.WaitFor(t, 90*time.Second, "server-"+autopilotSpare+" a voter and server-"+victim+" gone", func() error {
		voters, all, l, err := peersOf(alive[0])
		if err != nil {
			return err
		}
		if l == "" {
			return fmt.Errorf("no leader")
		}
		if all["server-"+autopilotSpare] && !voters["server-"+autopilotSpare] {
			sawNonVoter = true
		}
		if all["server-"+victim] || !voters["server-"+autopilotSpare] || len(voters) != 5 {
			return fmt.Errorf("voters %v, all %v", voters, all)
		}
		return nil
	})
	if !sawNonVoter {
		t.Logf("server-%s was promoted before a look at list-peers saw it a non-voter", autopilotSpare)
	}
	cliPoll.WaitFor(t, 60*time.Second, "autopilot to judge every server healthy", func() error {
		h, err := autopilotHealth(autopilotSpare)
		if err != nil {
			return err
		}
		if !h.Healthy || h.FailureTolerance != 2 || len(h.Servers) != 5 {
			return fmt.Errorf("health %+v", h)
		}
		return nil
	})
	for ip, p := range procs {
		select {
		case <-p.done:
			if ip != victim {
				t.Errorf("server %s exited: %v", ip, p.err)
			}
		default:
		}
	}
}
