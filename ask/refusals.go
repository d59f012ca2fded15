package ask

import "strings"

// offTopic is the first half of rule 1: questions events cannot answer. It
// returns why, with what to ask instead, or "".
func offTopic(s *sentence) string {
	for _, t := range topics {
		for _, w := range t.words {
			if w == "will" && s.hasPhrase("will you") {
				continue // a polite order, not a prediction
			}
			if (strings.Contains(w, " ") && s.hasPhrase(w)) || s.has(w) {
				return t.why
			}
		}
	}
	return ""
}

var topics = []struct {
	words []string
	why   string
}{
	{
		[]string{"log", "logs", "stdout", "stderr", "output", "console", "logfile"},
		`events do not hold a node's logs or output: "grid node logs NODE" shows them; ask here what happened, e.g. "what happened to node-2 today?"`,
	},
	{
		[]string{"predict", "predicts", "prediction", "predictions", "forecast", "forecasts", "likely", "will", "going to", "expect", "probably", "future"},
		`events record the past and cannot predict what will happen; ask what did, e.g. "how many nodes crashed this week?"`,
	},
	{
		[]string{"cpu", "memory", "ram", "disk", "disks", "latency", "latencies", "throughput", "bandwidth", "iops",
			"load", "utilization", "utilisation", "usage", "temperature", "metrics", "metric", "performance", "slow",
			"slowest", "fastest", "capacity", "traffic", "percentile", "p99", "p95", "bytes", "space", "swap", "approaching"},
		`events record what changed (spawns, stops, crashes, agents going offline), not metrics such as CPU, memory, disk or latency; ask e.g. "which nodes crashed today?"`,
	},
	{
		[]string{"who", "whom", "user", "users", "operator", "person"},
		`events do not record who ordered a change; ask what happened, e.g. "what happened to node-2 today?"`,
	},
}

// orderVerbs start an order rather than a question.
var orderVerbs = map[string]string{
	"stop":      "grid node stop NODE_ID",
	"kill":      "grid node stop NODE_ID",
	"terminate": "grid node stop NODE_ID",
	"shutdown":  "grid node stop NODE_ID",
	"shut":      "grid node stop NODE_ID",
	"remove":    "grid node stop NODE_ID",
	"delete":    "grid node stop NODE_ID",
	"spawn":     "grid node spawn -agent=NAME -port=PORT",
	"start":     "grid node spawn -agent=NAME -port=PORT",
	"launch":    "grid node spawn -agent=NAME -port=PORT",
	"run":       "grid node spawn -agent=NAME -port=PORT",
	"create":    "grid node spawn -agent=NAME -port=PORT",
	"deploy":    "grid node spawn -agent=NAME -port=PORT",
	"add":       "grid node spawn -agent=NAME -port=PORT",
	"restart":   "grid node stop NODE_ID, then grid node spawn -agent=NAME -port=PORT",
	"reboot":    "grid node stop NODE_ID, then grid node spawn -agent=NAME -port=PORT",
	"bounce":    "grid node stop NODE_ID, then grid node spawn -agent=NAME -port=PORT",
	"scale":     "grid node spawn -agent=NAME -port=PORT for each node to add, grid node stop NODE_ID for each to remove",
	"resize":    "grid node spawn -agent=NAME -port=PORT for each node to add, grid node stop NODE_ID for each to remove",
	"drain":     "grid node stop NODE_ID for each node on the agent",
	"evict":     "grid node stop NODE_ID for each node on the agent",
	"move":      "grid node stop NODE_ID, then grid node spawn -agent=NAME -port=PORT on the new agent",
	"migrate":   "grid node stop NODE_ID, then grid node spawn -agent=NAME -port=PORT on the new agent",
}

// agentStops are the order verbs that, aimed at an agent, mean taking it away.
var agentStops = map[string]bool{
	"stop": true, "kill": true, "terminate": true, "shutdown": true, "shut": true,
	"remove": true, "delete": true, "drain": true, "evict": true,
}

// politeness may come before an order: "please stop node-2", "can you stop node-2".
var politeness = map[string]bool{
	"please": true, "can": true, "could": true, "would": true, "will": true, "you": true,
	"go": true, "ahead": true, "and": true, "now": true, "kindly": true, "i": true, "want": true, "to": true,
}

// order is the second half of rule 1: an order, which grid ask refuses with the
// command that does it. An order verb leads and what follows is a thing to act on:
// "stop node-2", "scale to 10 nodes"; "stop events today" is a question.
func order(s *sentence) (string, bool) {
	i := 0
	for i < len(s.words) && politeness[s.words[i]] {
		i++
	}
	cmd, ok := orderVerbs[s.at(i)]
	if !ok {
		return "", false
	}
	next := s.at(i + 1)
	if strings.HasPrefix(next, "agent") && agentStops[s.at(i)] {
		return "grid node stop NODE_ID for each of its nodes, then stop the grid agent process on its host", true
	}
	switch next {
	case "all", "the", "a", "an", "every", "node", "nodes", "agent", "agents", "to", "up", "down",
		"it", "them", "cluster", "my", "new", "another", "more", "":
		return cmd, true
	}
	if entityShape.MatchString(next) || isNumeric(next) {
		return cmd, true
	}
	return "", false
}
