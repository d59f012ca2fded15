package command

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sutragrid/grid/api"
)

// EventShowCommand is `grid event show`.
type EventShowCommand struct {
	Meta
	clock
}

// Synopsis implements cli.Command.
func (c *EventShowCommand) Synopsis() string {
	return "Show one event, what caused it and what it caused"
}

// Help implements cli.Command.
func (c *EventShowCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid event show [options] SEQ

  Show the event with sequence number SEQ: every field that applies to it,
  one "Key = value" line each; then its causes, the chain of events that led
  to it (its direct cause first); then its effects, the events it caused.

  A spawn_succeeded or spawn_failed is caused by its spawn_requested, a
  stop_succeeded or stop_failed by its stop_requested, and a node_restarted
  by its node_crashed.

  With -json the output is an object with the fields event, causes and
  effects; each event has the fields that 'grid event list -json' prints.
` + clientHelp)
}

// Run implements cli.Command.
func (c *EventShowCommand) Run(args []string) int {
	const name = "event show"
	fs := c.clientFlags(name)
	if code, ok := c.parseFlags(fs, name, args); !ok {
		return code
	}
	seq, err := eventSeqArg(fs.Args())
	if err != nil {
		return c.usageError(name, err)
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	d, err := client.Event(ctx, seq)
	if api.IsNotFound(err) {
		return c.fail("event %d not found", seq)
	}
	if err != nil {
		return c.fail("get event %d: %v", seq, err)
	}
	c.warnPartial(d.Partial)
	if c.json {
		return c.printJSON(struct {
			Event   eventJSON   `json:"event"`
			Causes  []eventJSON `json:"causes"`
			Effects []eventJSON `json:"effects"`
		}{toEventJSON(&d.Event), toEventsJSON(d.Causes), toEventsJSON(d.Effects)})
	}
	var b strings.Builder
	b.WriteString(formatFields(eventFields(c.now(), &d.Event)))
	for _, part := range []struct {
		title string
		evs   []api.Event
	}{{"Causes", d.Causes}, {"Effects", d.Effects}} {
		fmt.Fprintf(&b, "\n\n%s:\n", part.title)
		if len(part.evs) == 0 {
			b.WriteString("  (none)")
			continue
		}
		for i := range part.evs {
			if i > 0 {
				b.WriteString("\n")
			}
			b.WriteString("  " + formatEventLine(&part.evs[i]))
		}
	}
	c.Ui.Output(b.String())
	return 0
}

// eventSeqArg checks that args is exactly one event seq.
func eventSeqArg(args []string) (uint64, error) {
	switch {
	case len(args) == 0:
		return 0, errors.New("missing argument: the event's SEQ")
	case len(args) > 1:
		return 0, argsError(args[1:])
	}
	seq, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("SEQ must be a positive integer, not %q", args[0])
	}
	return seq, nil
}
