package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sutragrid/grid/api"
)

// Delays between reconnections of `grid event tail`: the first, doubled after each
// failed attempt up to the last.
const (
	tailReconnectDelay    = 500 * time.Millisecond
	tailReconnectMaxDelay = 10 * time.Second
)

// EventTailCommand is `grid event tail`.
type EventTailCommand struct {
	Meta
	clock
	// interrupt returns the context that ends the command; nil means SIGINT or
	// SIGTERM. Tests set it.
	interrupt func() (context.Context, context.CancelFunc)
}

// Synopsis implements cli.Command.
func (c *EventTailCommand) Synopsis() string {
	return "Follow events as they happen"
}

// Help implements cli.Command.
func (c *EventTailCommand) Help() string {
	return strings.TrimSpace(`
Usage: grid event tail [options]

  Print the cluster's events as they happen, one line each as 'grid event
  list' prints them, in seq order, until interrupted with Ctrl-C (exit
  status 0).

  By default only new events are printed. With -since-seq=N the events after
  N are printed first, then the new ones: no event is left out or printed
  twice. If the connection to the server drops, the command reconnects and
  resumes after the last event it printed, reporting this on stderr.

  When the server cannot deliver an event in its place (the event store is
  unreachable, or no longer holds it), a warning on stderr names the event:
  either the server retries, and the event follows, or it was skipped.

  With -json each event is printed as one JSON object per line, with the
  fields that 'grid event list -json' prints.

Tail Options:

  -since-seq=<n>
    Start right after the event with seq n: 0 prints the whole history.
    Default: start with the next new event.
` + clientHelp)
}

// Run implements cli.Command.
func (c *EventTailCommand) Run(args []string) int {
	const name = "event tail"
	var sinceFlag string
	fs := c.clientFlags(name)
	fs.StringVar(&sinceFlag, "since-seq", "", "")
	if code, ok := c.parseNoArgs(fs, name, args); !ok {
		return code
	}
	var (
		since    uint64
		hasSince = sinceFlag != ""
	)
	if hasSince {
		var err error
		if since, err = strconv.ParseUint(sinceFlag, 10, 64); err != nil {
			return c.usageError(name, fmt.Errorf("-since-seq must be an event seq (0 or more), not %q", sinceFlag))
		}
	}
	client, err := c.client()
	if err != nil {
		return c.fail("%v", err)
	}
	interrupt := c.interrupt
	if interrupt == nil {
		interrupt = interruptContext
	}
	ctx, cancel := interrupt()
	defer cancel()

	var (
		started  bool // the stream was established once
		received bool // the current connection delivered something
		printErr error
	)
	delay := c.reconnectDelay()
	for {
		received = false
		err := client.StreamEvents(ctx, since, hasSince, func(it api.StreamItem) error {
			started, received = true, true
			since, hasSince = it.Seq, true
			switch {
			case it.Event != nil:
				if printErr = c.printStreamEvent(it.Event); printErr != nil {
					return printErr
				}
			case it.Gap != nil && it.Gap.Retrying:
				c.Ui.Error(fmt.Sprintf("Warning: event %d is not available yet (%s); the server retries", it.Gap.Seq, it.Gap.Error))
			case it.Gap != nil:
				c.Ui.Error(fmt.Sprintf("Warning: event %d is missing and was skipped: %s", it.Gap.Seq, it.Gap.Error))
			}
			return nil
		})
		switch {
		case ctx.Err() != nil:
			return 0
		case printErr != nil:
			return c.fail("%v", printErr)
		case !started:
			return c.fail("follow events: %v", err)
		case isClientError(err):
			return c.fail("follow events after seq %d: %v", since, err)
		}
		if received {
			delay = c.reconnectDelay()
		}
		c.progress(fmt.Sprintf("Lost the event stream (%v); reconnecting in %s to resume after seq %d", err, formatDuration(delay), since))
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(delay):
		}
		delay = min(delay*2, tailReconnectMaxDelay)
	}
}

// reconnectDelay is the first delay before reconnecting; tests shorten it.
func (c *EventTailCommand) reconnectDelay() time.Duration {
	if c.interval > 0 {
		return c.interval
	}
	return tailReconnectDelay
}

// printStreamEvent prints one event as a line, or as one line of JSON.
func (c *EventTailCommand) printStreamEvent(e *api.Event) error {
	if !c.json {
		c.Ui.Output(formatEventLine(e))
		return nil
	}
	b, err := json.Marshal(toEventJSON(e))
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	c.Ui.Output(string(b))
	return nil
}

// isClientError reports whether err is a 4xx answer, which retrying cannot mend.
func isClientError(err error) bool {
	var se *api.StatusError
	return errors.As(err, &se) && se.Code >= http.StatusBadRequest && se.Code < http.StatusInternalServerError
}
