package command

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/ask"
)

// AskCommand is `grid ask`.
type AskCommand struct {
	Meta
}

// Synopsis implements cli.Command.
func (c *AskCommand) Synopsis() string {
	return "Ask what happened in the grid, in plain English"
}

// Help implements cli.Command.
func (c *AskCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid ask [options] QUESTION...

  Ask a question about the grid in plain English. The server interprets it
  (offline and deterministically: no model, no network), runs the queries
  that answer it against its HTTP API, and prints a one-line summary, the
  answer (events, counts with a bar chart, a causal chain as a tree, or the
  present state), then how it understood the question and the queries it ran,
  so that you can run or refine them yourself.

  A question it cannot answer (metrics, logs, predictions, orders, a name the
  grid has never known) is answered with the reason and exits 0; only a
  failure to reach a server, or a server error, exits 1.

      $ grid ask what happened on agent-001 today
      $ grid ask "why did node-3 restart?"
      $ grid ask how many crashes per agent this week
      $ grid ask which agents are offline

  The questions it understands, and the JSON shape of -json, are described in
  website/ask.md.

Ask Options:

  -now=<time>
    Answer as if asked at this RFC 3339 time ("today" and "in the last hour"
    are counted from it). Default: the server's clock.
` + clientHelp)
}

// Run implements cli.Command.
func (c *AskCommand) Run(args []string) int {
	const name = "ask"
	var now string
	fs := c.clientFlags(name)
	fs.StringVar(&now, "now", "", "")
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return c.usageError(name, fmt.Errorf("no question: try e.g. grid ask \"what happened today?\""))
	}
	if now != "" {
		if _, err := time.Parse(time.RFC3339Nano, now); err != nil {
			return c.usageError(name, fmt.Errorf("-now must be an RFC 3339 time such as 2026-03-05T09:15:00Z, not %q", now))
		}
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := client.Ask(ctx, &api.AskRequest{Question: strings.Join(fs.Args(), " "), Now: now})
	if err != nil {
		return c.fail("ask: %v", err)
	}
	for _, p := range resp.Partial {
		c.warnPartial(p)
	}
	if c.json {
		return c.printJSON(resp)
	}
	c.Ui.Output(resp.Summary)
	if body := renderAnswer(&resp.Answer, resp.Now); body != "" {
		c.Ui.Output("\n" + body)
	}
	c.Ui.Output("\n" + interpretedAs(&resp.Interpretation, resp.Queries))
	return 0
}

// renderAnswer lays the answer out for a terminal: "" when the summary says it all.
func renderAnswer(a *api.Answer, now time.Time) string {
	var b strings.Builder
	switch a.Kind {
	case api.AnswerEvents:
		writeEvents(&b, a.Events)
	case api.AnswerGroups:
		writeGroups(&b, a.GroupBy, a.Groups)
	case api.AnswerSeries:
		writeSeries(&b, a.Bucket, a.Groups)
	case api.AnswerRate:
		if r := a.Rate; r != nil {
			fmt.Fprintf(&b, "%s  %d\n%s  %d\n", r.Numerator.Type, r.Numerator.Count, r.Denominator.Type, r.Denominator.Count)
		}
	case api.AnswerChain:
		writeChain(&b, a)
	case api.AnswerEvent:
		b.WriteString(formatEventLine(a.Anchor) + "\n")
	case api.AnswerState:
		writeState(&b, a, now)
	}
	return strings.TrimRight(b.String(), "\n")
}

func writeEvents(b *strings.Builder, evs []api.Event) {
	for i := range evs {
		b.WriteString(formatEventLine(&evs[i]) + "\n")
	}
}

// barWidth is the length of the longest bar of a chart, in characters.
const barWidth = 40

// bar draws count against max as a row of blocks; a count above 0 shows at least one.
func bar(count, max uint64) string {
	if max == 0 || count == 0 {
		return ""
	}
	n := int(count * barWidth / max)
	if n == 0 {
		n = 1
	}
	return strings.Repeat("█", n)
}

func maxCount(gs []api.EventGroup) uint64 {
	var m uint64
	for _, g := range gs {
		m = max(m, g.Count)
	}
	return m
}

// writeGroups writes a column per grouping, the count and a bar.
func writeGroups(b *strings.Builder, groupBy []string, gs []api.EventGroup) {
	header, rows := groupRows(groupBy, gs)
	for i, g := range gs {
		rows[i] = append(rows[i], bar(g.Count, maxCount(gs)))
	}
	writeTable(b, append(header, ""), rows)
}

func groupRows(groupBy []string, gs []api.EventGroup) ([]string, [][]string) {
	var header []string
	for _, g := range groupBy {
		header = append(header, strings.ToUpper(g[:1])+g[1:])
	}
	header = append(header, "Count")
	rows := make([][]string, len(gs))
	for i, g := range gs {
		for _, by := range groupBy {
			v := g.Values[by]
			if by == "node" && g.Values["node_name"] != "" {
				v = g.Values["node_name"]
			}
			rows[i] = append(rows[i], orDash(v))
		}
		rows[i] = append(rows[i], strconv.FormatUint(g.Count, 10))
	}
	return header, rows
}

// writeSeries draws a bar chart of the series, a bucket a line, oldest first.
func writeSeries(b *strings.Builder, bucket string, gs []api.EventGroup) {
	layout := "2006-01-02 15:04"
	if bucket == "1d" {
		layout = "2006-01-02"
	}
	m := maxCount(gs)
	rows := make([][]string, 0, len(gs))
	for _, g := range gs {
		when := "-"
		if g.Bucket != nil {
			when = g.Bucket.UTC().Format(layout)
		}
		row := []string{when}
		for _, k := range sortedKeys(g.Values) {
			if k != "node_name" {
				row = append(row, g.Values[k])
			}
		}
		rows = append(rows, append(row, strconv.FormatUint(g.Count, 10), bar(g.Count, m)))
	}
	writeTable(b, nil, rows)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// writeChain draws the causes down to the anchor and its effects below it as an
// indented tree, then the context window's events.
func writeChain(b *strings.Builder, a *api.Answer) {
	depth := 0
	for i := len(a.Causes) - 1; i >= 0; i-- {
		writeTreeLine(b, depth, " ", &a.Causes[i])
		depth++
	}
	writeTreeLine(b, depth, ">", a.Anchor)
	for i := range a.Effects {
		writeTreeLine(b, depth+1, " ", &a.Effects[i])
	}
	if a.Window != "" {
		side := "before"
		if len(a.Events) > 0 && a.Events[0].Timestamp.After(a.Anchor.Timestamp) {
			side = "after"
		}
		fmt.Fprintf(b, "\nEvents in the %s %s it, on its agent and the cluster:\n", a.Window, side)
		if len(a.Events) == 0 {
			b.WriteString("  (none)\n")
		}
		for i := range a.Events {
			b.WriteString("  " + formatEventLine(&a.Events[i]) + "\n")
		}
	}
}

// writeTreeLine writes one event of a chain at depth, marked with mark (">" for
// the anchor).
func writeTreeLine(b *strings.Builder, depth int, mark string, e *api.Event) {
	indent := strings.Repeat("   ", depth)
	branch := ""
	if depth > 0 {
		branch = "└─ "
		indent = strings.Repeat("   ", depth-1)
	}
	fmt.Fprintf(b, "%s %s%s%s\n", mark, indent, branch, formatEventLine(e))
}

// writeState writes the agents, nodes or cluster of a state answer.
func writeState(b *strings.Builder, a *api.Answer, now time.Time) {
	switch {
	case a.Cluster != nil:
		c := a.Cluster
		fmt.Fprintf(b, "Health   %s\nLeader   %s\nServers  %d\n", orDash(c.Health), orDash(c.Leader), c.Servers)
		fmt.Fprintf(b, "Agents   %d healthy, %d degraded, %d offline\n", c.Agents.Healthy, c.Agents.Degraded, c.Agents.Offline)
		fmt.Fprintf(b, "Nodes    %d running, %d pending, %d restarting, %d failed, %d lost, %d stopped\n",
			c.Nodes.Running, c.Nodes.Pending, c.Nodes.Restarting, c.Nodes.Failed, c.Nodes.Lost, c.Nodes.Stopped)
	case a.Agents != nil:
		rows := make([][]string, len(a.Agents))
		for i, ag := range a.Agents {
			rows[i] = []string{ag.Name, ag.Status, ag.Address, fmt.Sprintf("%d/%d", ag.Nodes, ag.MaxNodes), formatAge(now, ag.LastHeartbeat)}
		}
		writeTable(b, []string{"Name", "Status", "Address", "Nodes", "Last Heartbeat"}, rows)
	case a.Nodes != nil:
		rows := make([][]string, len(a.Nodes))
		for i, n := range a.Nodes {
			rows[i] = []string{n.ID, n.Name, n.Agent, n.Status, strconv.Itoa(n.Port), strconv.Itoa(n.PID), strconv.Itoa(n.Restarts)}
		}
		writeTable(b, []string{"ID", "Name", "Agent", "Status", "Port", "PID", "Restarts"}, rows)
	}
}

// interpretedAs says how the question was understood and lists the queries run.
func interpretedAs(in *ask.Interpretation, queries []string) string {
	parts := []string{"intent=" + string(in.Intent)}
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("entities", strings.Join(in.Entities, ","))
	add("kind", in.EntitiesKind)
	add("state", in.State)
	types := make([]string, len(in.Types))
	for i, t := range in.Types {
		types[i] = string(t)
	}
	add("types", strings.Join(types, ","))
	add("severity", in.Severity)
	if in.Since != nil {
		add("since", in.Since.Format(time.RFC3339))
	}
	if in.Until != nil {
		add("until", in.Until.Format(time.RFC3339))
	}
	if in.DefaultWindow {
		add("default_window", "true")
	}
	add("group_by", strings.Join(in.GroupBy, ","))
	add("bucket", in.Bucket)
	if in.Limit > 0 {
		add("limit", strconv.Itoa(in.Limit))
	}
	add("window", in.Window)
	var b strings.Builder
	b.WriteString("Interpreted as: " + strings.Join(parts, " "))
	for _, q := range queries {
		b.WriteString("\n  " + q)
	}
	return b.String()
}
