package events

import (
	"fmt"
	"testing"
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
