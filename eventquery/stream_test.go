package eventquery

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sutragrid/grid/events"
)

func TestStreamStart(t *testing.T) {
	for _, tc := range []struct {
		lastEventID, sinceSeq string
		want                  uint64
		err                   string
	}{
		{"", "", 42, ""},
		{"", "0", 0, ""},
		{"", "7", 7, ""},
		{"5", "1", 5, ""}, // a reconnecting EventSource knows better than its URL
		{" 5 ", "", 5, ""},
		{"0", "", 0, ""},
		{"", "x", 0, `since_seq must be an event seq (0 or more), not "x"`},
		{"", "-1", 0, "since_seq must be an event seq"},
		{"x", "1", 0, `Last-Event-ID must be an event seq, not "x"`},
	} {
		got, err := StreamStart(tc.lastEventID, tc.sinceSeq, 42)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q, %q: %v, want an error saying %q", tc.lastEventID, tc.sinceSeq, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q, %q: %d, %v; want %d", tc.lastEventID, tc.sinceSeq, got, err, tc.want)
		}
	}
}

// TestFollower plays a stream's lookups and checks what it sends.
func TestFollower(t *testing.T) {
	e := func(seq uint64) *events.Event { return ev(seq, events.AgentRegistered, 0, "a1") }
	notFound := fmt.Errorf("event 4: %w", ErrNotFound)
	type lookup struct {
		e     *events.Event
		err   error
		after time.Duration // since the stream started
	}
	for _, tc := range []struct {
		name    string
		lookups []lookup
		want    string
	}{
		{"events", []lookup{{e(4), nil, 0}, {e(5), nil, 0}}, "send 4, send 5"},
		{"gone from the store", []lookup{{nil, notFound, 0}, {e(5), nil, 0}},
			"skip 4 (event 4 is no longer in the event store (removed by retention?)), send 5"},
		{"no store", []lookup{{nil, ErrNoStore, 0}},
			"skip 4 (event 4: " + ErrNoStore.Error() + ")"},
		{"store back in time", []lookup{{nil, errDown, 0}, {nil, errDown, time.Second}, {e(4), nil, 2 * time.Second}},
			"retry 4 (event store unreachable: connection refused), retry, send 4"},
		{"store away too long", []lookup{
			{nil, errDown, 0}, {nil, errDown, 29 * time.Second}, {nil, errDown, 30 * time.Second},
			{nil, errDown, 31 * time.Second}, {e(6), nil, 32 * time.Second},
		}, "retry 4 (event store unreachable: connection refused), retry, " +
			"skip 4 (event store unreachable: connection refused; skipped after retrying for 30s), " +
			"skip 5 (event store unreachable: connection refused; skipped after retrying for 30s), send 6"},
		{"store fails again later", []lookup{
			{nil, errDown, 0}, {e(4), nil, 20 * time.Second}, {nil, errDown, 40 * time.Second}, {nil, errDown, 41 * time.Second},
		}, "retry 4 (event store unreachable: connection refused), send 4, retry 5 (event store unreachable: connection refused), retry"},
	} {
		f := &Follower{Next: 4, RetryFor: 30 * time.Second}
		start := time.Now()
		var got []string
		for _, l := range tc.lookups {
			before := f.Next
			st := f.Step(l.e, l.err, start.Add(l.after))
			switch st.Action {
			case Send:
				got = append(got, fmt.Sprintf("send %d", st.Event.Seq))
			case Skip:
				got = append(got, fmt.Sprintf("skip %d (%s)", st.Gap.Seq, st.Gap.Error))
			case Retry:
				if st.Gap != nil {
					got = append(got, fmt.Sprintf("retry %d (%s)", st.Gap.Seq, st.Gap.Error))
				} else {
					got = append(got, "retry")
				}
			}
			if moved := f.Next != before; moved != (st.Action != Retry) || (st.Gap != nil && st.Gap.Retrying != (st.Action == Retry)) {
				t.Errorf("%s: step %+v moved the stream from %d to %d", tc.name, st, before, f.Next)
			}
		}
		if s := strings.Join(got, ", "); s != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, s, tc.want)
		}
	}
}
