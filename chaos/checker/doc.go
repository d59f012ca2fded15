// Package checker judges what a chaos run did to the grid: the history of every
// operation the load generator made (history.go), checked for linearizability with
// porcupine against a model of the nodes table.
package checker
