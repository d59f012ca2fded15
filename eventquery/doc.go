// Package eventquery is Grid's event query engine: it answers questions about the
// cluster's history from the two places an event can be, the event store (shipped
// events) and the replicated outbox (events derived and not yet shipped), and says
// when an answer may be incomplete. It knows nothing of HTTP handlers or Raft: a
// server hands it a View of its state and a Store, and writes out what it returns.
//
// Where things are:
//
//   - filter.go: Filter, the selection every query shares, and how an event matches it.
//   - parse.go: ListQuery and CountQuery from the query parameters of the HTTP API.
//   - cursor.go: page tokens, and the order of the store's time index.
//   - view.go: View, the Outbox and Store interfaces, and Find, one event by seq.
//   - list.go: List, a page of events merged from the store and the outbox.
//   - detail.go: Detail, an event with its chain of causes and its effects.
//   - count.go: Count, events counted by type, severity, agent, node and time bucket.
//   - stream.go: where a stream starts, and what it sends for each next seq (gaps).
//   - storage.go: a Store over a storage node's gRPC client, and the event layout there.
//
// Every reader takes its View of the state before it asks the store: an event missing
// from the outbox in that view was shipped before it, so the store holds it, and no
// event falls between the two while the shipper moves it.
package eventquery
