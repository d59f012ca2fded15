package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/sutragrid/grid/events"
)

func TestEventsQueryAndPartial(t *testing.T) {
	var uri string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uri = r.URL.RequestURI()
		w.Header().Set(PartialHeader, "event store unreachable: refused")
		io.WriteString(w, `{"events":[{"seq":3,"type":"agent_offline","timestamp":"2024-05-01T12:00:00Z","agent_id":"a1","description":"d"}],"next_page_token":"tok"}`)
	}))
	defer srv.Close()
	c, err := NewClient(&Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Events(context.Background(), EventQuery{
		Agents: []string{"a1", "a2"}, Nodes: []string{"n1"}, Types: []events.Type{events.AgentOffline, events.AgentDegraded},
		Since: "1h", Until: "2024-05-01T12:00:00Z", Limit: 5, Ascending: true, PageToken: "p",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "/v1/events?agent=a1%2Ca2&limit=5&node=n1&order=asc&page_token=p&since=1h&type=agent_offline%2Cagent_degraded&until=2024-05-01T12%3A00%3A00Z"
	if uri != want {
		t.Errorf("request %s, want %s", uri, want)
	}
	if len(l.Events) != 1 || l.Events[0].Seq != 3 || l.Events[0].AgentID != "a1" || l.NextPageToken != "tok" ||
		l.Partial != "event store unreachable: refused" {
		t.Errorf("list %+v", l)
	}
	if _, err := c.Events(context.Background(), EventQuery{}); err != nil || uri != "/v1/events" {
		t.Errorf("empty query: %s, %v", uri, err)
	}
}

func TestEventDetail(t *testing.T) {
	var rec recorder
	c := newServer(t, &rec, http.StatusOK, `{"event":{"seq":12,"type":"spawn_succeeded","timestamp":"2024-05-01T12:00:00Z","caused_by":11,"description":"d"},"causes":[{"seq":11,"type":"spawn_requested","timestamp":"2024-05-01T11:59:00Z","description":"c"}],"effects":null}`)
	d, err := c.Event(context.Background(), 12)
	if err != nil {
		t.Fatal(err)
	}
	if rec.uri != "/v1/event/12" || d.Event.CausedBy != 11 || len(d.Causes) != 1 || d.Causes[0].Seq != 11 ||
		d.Effects == nil || len(d.Effects) != 0 {
		t.Errorf("request %s, detail %+v", rec.uri, d)
	}
	c = newServer(t, &rec, http.StatusNotFound, `{"error":"event 99 not found"}`)
	if _, err := c.Event(context.Background(), 99); !IsNotFound(err) {
		t.Errorf("unknown event: %v, want a 404", err)
	}
}

func TestEventCounts(t *testing.T) {
	var rec recorder
	c := newServer(t, &rec, http.StatusOK, `{"groups":[{"values":{"severity":"error","agent":""},"bucket":"2024-05-01T12:00:00Z","count":3}],"total":4,"truncated":true}`)
	got, err := c.EventCounts(context.Background(), EventCountQuery{
		Agents: []string{"a1", "a2"}, Nodes: []string{"n1"}, Types: []events.Type{events.NodeCrashed},
		Severities: []events.Severity{events.SeverityError}, Since: "24h", Until: "1h",
		GroupBy: []string{"severity", "agent"}, Bucket: "1h", MaxGroups: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "/v1/events/aggregate?agent=a1%2Ca2&bucket=1h&group_by=severity%2Cagent&max_groups=10&node=n1&severity=error&since=24h&type=node_crashed&until=1h"
	if rec.uri != want {
		t.Errorf("request %s, want %s", rec.uri, want)
	}
	if len(got.Groups) != 1 || got.Groups[0].Values["severity"] != "error" || got.Groups[0].Count != 3 ||
		got.Groups[0].Bucket == nil || got.Groups[0].Bucket.Hour() != 12 || got.Total != 4 || !got.Truncated {
		t.Errorf("counts %+v", got)
	}

	c = newServer(t, &rec, http.StatusOK, `{"groups":null,"total":0,"truncated":false}`)
	if got, err := c.EventCounts(context.Background(), EventCountQuery{}); err != nil || rec.uri != "/v1/events/aggregate" || got.Groups == nil {
		t.Errorf("empty query: %s, %+v, %v", rec.uri, got, err)
	}
	c = newServer(t, &rec, http.StatusBadRequest, `{"error":"bucket must be one of …"}`)
	var se *StatusError
	if _, err := c.EventCounts(context.Background(), EventCountQuery{Bucket: "2h"}); !errors.As(err, &se) || se.Code != http.StatusBadRequest {
		t.Errorf("bad bucket: %v, want a 400", err)
	}
}

// TestQueryValues: a query's Values are the parameters its client call sends, zero
// fields left out.
func TestQueryValues(t *testing.T) {
	cases := []struct {
		name string
		q    interface{ Values() url.Values }
		want string
	}{
		{"empty list", &EventQuery{}, ""},
		{"list by entity", &EventQuery{Entities: []string{"agent-001", "cluster"}, Types: []events.Type{events.ClusterDegraded}, Limit: 3},
			"entity=agent-001%2Ccluster&limit=3&type=cluster_degraded"},
		{"list, every field", &EventQuery{Agents: []string{"a1"}, Nodes: []string{"n1", "n2"}, Entities: []string{"e"},
			Types: []events.Type{events.NodeCrashed}, Since: "1h", Until: "10m", Limit: 5, Ascending: true, PageToken: "p"},
			"agent=a1&entity=e&limit=5&node=n1%2Cn2&order=asc&page_token=p&since=1h&type=node_crashed&until=10m"},
		{"empty count", &EventCountQuery{}, ""},
		{"count by entity", &EventCountQuery{Entities: []string{"node-7"}, GroupBy: []string{"type"}, Bucket: "1h", Top: 3},
			"bucket=1h&entity=node-7&group_by=type&top=3"},
	}
	for _, tc := range cases {
		if got := tc.q.Values().Encode(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// sseStream is a stream as the server sends it: the start, an event, a comment, a
// gap the server retries, the event in its place, a skipped event, an event whose
// data spans two lines, and then the end of the stream.
const sseStream = "id: 3\n\n" +
	"id: 4\nevent: agent_registered\ndata: {\"seq\":4,\"type\":\"agent_registered\",\"timestamp\":\"2024-05-01T12:00:00Z\",\"description\":\"d\"}\n\n" +
	": keepalive\n\n" +
	"event: gap\ndata: {\"seq\":5,\"error\":\"event store unreachable\",\"retrying\":true}\n\n" +
	"id: 5\nevent: agent_offline\ndata: {\"seq\":5,\"type\":\"agent_offline\",\"timestamp\":\"2024-05-01T12:00:00Z\",\"description\":\"d\"}\n\n" +
	"id: 6\nevent: gap\ndata: {\"seq\":6,\"error\":\"gone\",\"retrying\":false}\n\n" +
	"id:7\nevent: cluster_healthy\ndata: {\"seq\":7,\"type\":\"cluster_healthy\",\ndata: \"timestamp\":\"2024-05-01T12:00:00Z\",\"description\":\"d\"}\n\n"

func TestStreamEvents(t *testing.T) {
	var uri string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uri = r.URL.RequestURI()
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, sseStream)
	}))
	defer srv.Close()
	c, err := NewClient(&Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = c.StreamEvents(context.Background(), 3, true, func(it StreamItem) error {
		switch {
		case it.Event != nil:
			got = append(got, "event "+string(it.Event.Type)+" at "+itoa(it.Seq))
		case it.Gap != nil:
			got = append(got, "gap "+itoa(it.Gap.Seq)+" "+it.Gap.Error+map[bool]string{true: " (retrying)", false: ""}[it.Gap.Retrying]+" at "+itoa(it.Seq))
		default:
			got = append(got, "start at "+itoa(it.Seq))
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "event stream ended") {
		t.Errorf("end of stream: %v", err)
	}
	want := []string{
		"start at 3",
		"event agent_registered at 4",
		"gap 5 event store unreachable (retrying) at 4",
		"event agent_offline at 5",
		"gap 6 gone at 6",
		"event cluster_healthy at 7",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("items:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if uri != "/v1/event/stream?since_seq=3" {
		t.Errorf("request %s", uri)
	}

	// Without since, no since_seq; an error from fn ends the stream with that error.
	stop := errors.New("enough")
	err = c.StreamEvents(context.Background(), 0, false, func(StreamItem) error { return stop })
	if err != stop || uri != "/v1/event/stream" {
		t.Errorf("stream: %v, request %s", err, uri)
	}
}

func TestStreamEventsStopsWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "id: 9\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	c, err := NewClient(&Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	err = c.StreamEvents(ctx, 0, false, func(it StreamItem) error {
		if it.Seq == 9 {
			cancel() // the user presses Ctrl-C once the stream is open
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("stream: %v, want context.Canceled", err)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
