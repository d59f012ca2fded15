package server

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/sutragrid/grid/internal/gridtest"
)

// TestReadOnCutOffLeader cuts the leader off from both followers and reads from it
// at once, while it still believes it leads: a read must not be answered from its
// state as if that were current, and a ?stale read still is.
func TestReadOnCutOffLeader(t *testing.T) {
	c := newClusterWith(t, 3, func(cfg *Config) {
		// A lease long enough that the leader surely still believes it leads when
		// it is asked, even on a loaded machine under -race: without the check, it
		// would answer.
		rc := *cfg.RaftConfig
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 2*time.Second, 2*time.Second, 2*time.Second
		cfg.RaftConfig = &rc
	})
	leader := c.leader()
	register(t, leader, "agent-1")
	get := func(path string) (int, string) {
		t.Helper()
		client := &http.Client{Timeout: 30 * time.Second}
		resp, err := client.Get("http://" + leader.HTTPAddr() + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/v1/agents"); code != http.StatusOK {
		t.Fatalf("read on the leader of a healthy cluster: %d %s", code, body)
	}

	// The followers' Raft stops: the leader's heartbeats and appends go unanswered,
	// as in a partition, and it learns so only when its lease runs out.
	heartbeats := make(chan raft.Observation, 64)
	obs := raft.NewObserver(heartbeats, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.FailedHeartbeatObservation)
		return ok
	})
	leader.raft.RegisterObserver(obs)
	defer leader.raft.DeregisterObserver(obs)
	for _, f := range followers(leader, c.servers) {
		if err := f.raft.Shutdown().Error(); err != nil {
			t.Fatalf("stop raft on %s: %v", f.Name(), err)
		}
	}
	// Raft's VerifyLeader counts the answer to an append that was already on its
	// way when the verification began: wait until each follower's last answers are
	// in and a heartbeat to it has failed, so that only the check can stop the read.
	failed := map[raft.ServerID]bool{}
	gridtest.WaitFor(t, 10*time.Second, "a failed heartbeat to each follower", func() error {
		for len(heartbeats) > 0 {
			failed[(<-heartbeats).Data.(raft.FailedHeartbeatObservation).PeerID] = true
		}
		if len(failed) < 2 {
			return fmt.Errorf("failed heartbeats to %d followers", len(failed))
		}
		return nil
	})
	if !leader.IsLeader() {
		t.Fatal("the leader stepped down before it was asked: the test shows nothing")
	}
	if code, body := get("/v1/agents"); code == http.StatusOK {
		t.Errorf("the cut-off leader answered a read from its own state: %s", body)
	}
	if code, body := get("/v1/agents?stale"); code != http.StatusOK || !containsAll(body, "agent-1") {
		t.Errorf("stale read on the cut-off leader: %d %s", code, body)
	}
}
