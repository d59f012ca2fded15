// Package storage is the storage node: a durable store of concepts (an ID, content,
// attributes, a time) and typed associations between them, on pebble, with the
// indexes that answer time-range, filter, aggregate, graph and text queries, and the
// gRPC service (proto/storage.proto) that `grid storage` serves.
//
// The package knows nothing of the grid: the event store is one client of it.
//
// Files: keys.go and record.go define what is on disk; write.go the one write path;
// stream.go, query.go and aggregate.go the indexed reads; graph.go associations;
// text.go and textmerge.go the full-text index; retention.go expiry; validate.go and
// service.go the gRPC surface (batchcodec.go decodes LearnBatch requests); limits.go
// the bounds on batches in flight and the free-space reserve, which refuse with
// ResourceExhausted rather than let a client exhaust memory or disk; server.go
// the process around it (and the message size bound); metrics.go measures writes and calls for GET /v1/metrics on
// the optional metrics listener (Config.MetricsAddr, see telemetry/).
package storage
