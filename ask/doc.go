// Package ask understands a question about the grid in plain English: Interpret
// maps it to the Interpretation of website/ask.md (an intent, entities, event
// types, a time range and the rest), which the CLI's "grid ask" and POST /v1/ask
// then run against the HTTP API. The package is pure: no I/O, no network and no
// clock of its own, so the same question, now and names always give the same
// interpretation, and tests and replays pin "now".
//
// It never guesses. A question it cannot map is unanswerable, with the reason and
// an example of what it can answer; an order is an action, refused with the
// command that does it; a name the grid has never known is unknown_entity.
//
// Files:
//
//   - interpretation.go: the contract's types (Interpretation, Intent, Names) and
//     Validate, which checks an interpretation against the contract.
//   - interpret.go: Interpret and the contract's decision rules, in its order.
//   - refusals.go: rule 1 — what events do not hold, and orders.
//   - entities.go: agent and node names, resolved against Names.
//   - vocabulary.go: the words for event types and severities, and the check
//     that a question is mostly words the rules know.
//   - timephrase.go: time phrases ("yesterday", "in the last 5 minutes", "from
//     March 1 to March 3") resolved against now, in UTC.
//   - tokens.go: screening of junk input and the tokenized sentence whose words
//     the rules consume as they claim them.
//
// Tests: examples_test.go runs testdata/examples.json, the contract's public
// examples; interpret_test.go is the broad table (phrasings, edge days, bad
// input); fuzz_test.go and bench_test.go hold FuzzInterpret and BenchmarkInterpret.
package ask
