// Package answer runs a question's interpretation (package ask) against the grid's
// HTTP API and says what it found: the events, counts, rates, causal chains or
// present state the question asks for, and a summary in one or two sentences that
// says what was assumed. POST /v1/ask and so `grid ask` and the UI's chat box are
// built on Run.
//
// Every request it makes goes through the public API (the Source interface, which
// api.Client implements) and is listed in the response's queries as a user could
// run it, so an answer can always be checked and refined by hand. Given the same
// question, now, names and history, Run gives the same answer.
//
// Files:
//
//   - answer.go: Run, Source, and the run's bookkeeping (queries, partial reasons).
//   - scope.go: the interpretation's entities, types and range as API filters.
//   - events.go: history, list, count, rate and top: the history as events or counts.
//   - chain.go: cause, before, after, chain and last: an anchor event and what is
//     around it.
//   - state.go: state questions, from the present state.
//   - words.go: the English of summaries: event nouns, times and ranges, lists.
//
// answer_test.go runs every intent against a fake Source with a known history;
// the end-to-end test (e2e/ask_test.go) asks a real grid.
package answer
