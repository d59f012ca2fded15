// Package gridtest holds what Grid's tests share, so that each package's tests say
// what they check rather than how they wait or log. Only tests import it.
//
// Files: wait.go polls a condition until it holds or a deadline passes (WaitFor,
// WaitUntil, Poller); log.go gives each component a logger whose output is shown only
// when its test fails (Logger), over a buffer safe for concurrent writers
// (SyncBuffer); net.go finds free loopback ports (FreePort); build.go builds the grid
// binary for tests that run it as real processes (BuildGrid); pki.go makes a CA and
// certificates of every role for tests with mutual TLS (PKI); metrics.go scrapes
// /v1/metrics and parses it with the Prometheus text parser (Scrape).
package gridtest
