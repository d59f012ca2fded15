package events

import (
	"fmt"
	"testing"
	"time"
)

func TestSeverities(t *testing.T) {
	if _, err := ParseSeverity("loud"); err == nil {
		t.Fatal("an unknown severity parsed")
	}
	for _, tc := range []struct {
		min  string
		want []Type
	}{
		{"critical", []Type{ClusterCritical}},
		{"error", []Type{AgentOffline, SpawnFailed, NodeCrashed, ClusterCritical}},
		{"warning", []Type{AgentDegraded, AgentOffline, SpawnFailed, StopFailed, NodeCrashed, ClusterDegraded, ClusterCritical}},
	} {
		min, err := ParseSeverity(tc.min)
		if err != nil {
			t.Fatal(err)
		}
		got := TypesAtLeast(min)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("TypesAtLeast(%s) = %v, want %v", tc.min, got, tc.want)
		}
	}
	if len(TypesAtLeast(SeverityInfo)) != len(Types) {
		t.Error("info and up is not every type")
	}
}

// cluster_restored is an addition to the seed's 17 types: known to Valid and to
// ParseTypes, a cluster event, and described with its snapshot and requester.
func TestClusterRestored(t *testing.T) {
	if n := len(Types); n != 18 {
		t.Errorf("%d types, want 18 (the seed's 17 and cluster_restored)", n)
	}
	if got, err := ParseTypes("cluster_restored"); err != nil || len(got) != 1 || got[0] != ClusterRestored {
		t.Errorf("ParseTypes(cluster_restored) = %v, %v", got, err)
	}
	saved := time.Date(2026, 12, 1, 18, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		e    Event
		want string
	}{
		{"full", Event{Type: ClusterRestored, SnapshotIndex: 42, SnapshotTime: &saved, RequestedBy: "ops"},
			"Cluster state restored from the snapshot at Raft index 42 (saved 2026-12-01T18:30:00Z) by ops; the history goes on"},
		{"anonymous, no time", Event{Type: ClusterRestored, SnapshotIndex: 7},
			"Cluster state restored from the snapshot at Raft index 7; the history goes on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Describe(&tc.e); got != tc.want {
				t.Errorf("Describe = %q, want %q", got, tc.want)
			}
			if got := tc.e.Entities(); len(got) != 1 || got[0] != ClusterEntity {
				t.Errorf("entities %v, want [cluster]", got)
			}
		})
	}
}
