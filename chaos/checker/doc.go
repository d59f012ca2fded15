// Package checker judges what a chaos run did to the grid: the history of every
// operation the load generator made (history.go), checked for linearizability with
// porcupine against a model of the nodes table.
//
// Files: history.go records the operations of concurrent clients (Op, History);
// model.go is the model of one node name, what each answer of the HTTP API allows
// and what it changes; check.go partitions a history by node name, checks each
// name's operations with porcupine (Check) and draws the one that failed
// (Result.Visualize).
//
// The model holds because a node name names at most one node for the whole life of
// a grid: the servers refuse a name that any node, stopped or not, already has, and
// never delete a node. A name's history is therefore independent of every other
// name's, and checking name by name is both sound and fast.
package checker
