// Package chaos runs a whole grid of real processes (five servers, three agents, two
// event stores), each in a network namespace of its own on a bridge, under load and
// faults, and checks what survives. It lives in tests only (Linux, as root):
//
//   - main_test.go builds grid once and takes the machine-wide lock of the e2e tests;
//   - netns_test.go makes the namespaces, the bridge and the veths, and cuts and heals
//     the network between hosts (Partition, Heal);
//   - cluster_test.go starts, kills, pauses, restarts and wipes the processes, and
//     finds the leader;
//   - load_test.go spawns, stops and reads nodes from concurrent clients, recording
//     each call in a checker.History;
//   - nemesis_test.go picks faults at random from a seed and logs each;
//   - verify_test.go checks the grid once it has settled: the servers agree, what was
//     acknowledged is there, no node runs twice, the event stores hold every event
//     once and in order, the same in both, hashing to every server's history digest;
//   - chaos_test.go is TestChaos, which puts them together.
//
// The history's linearizability is checked by package checker, with porcupine. Clock
// jumps are not among the faults: a network namespace cannot give one process a
// clock of its own (see nemesis_test.go).
package chaos
