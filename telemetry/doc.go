// Package telemetry is how a Grid process measures itself and serves what it
// measured: one Prometheus registry per process (tests run several servers in one
// process, so never the global one), the bridge from hashicorp/go-metrics, which Raft,
// memberlist and serf write to, and GET /v1/metrics in JSON or in the Prometheus text
// format.
//
// Files: registry.go is the Registry and the go-metrics bridge, and armon.go the same
// bridge for the libraries still on armon/go-metrics; handler.go serves
// /v1/metrics and defines its JSON shape; instrument.go times HTTP routes and gRPC
// methods into histograms; listener.go is the small HTTP listener that agents and
// storage nodes serve /v1/metrics and /v1/health on.
//
// Every metric is listed, with its type, labels and meaning, in website/metrics.md.
package telemetry
