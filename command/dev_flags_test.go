//go:build linux

package command

import "testing"

// TestDevFlags: grid dev refuses an address other than loopback without -secure or
// -insecure, before it starts anything.
func TestDevFlags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		check check
	}{
		{"not loopback", []string{"-bind=0.0.0.0"}, usageFails("dev",
			"-bind=0.0.0.0 is not a loopback address: give -secure to run with TLS, gossip encryption and ACLs, or -insecure to run without them")},
		{"private IP", []string{"-bind=10.1.2.3"}, usageFails("dev", "-bind=10.1.2.3 is not a loopback address")},
		{"both", []string{"-secure", "-insecure"}, usageFails("dev", "-secure and -insecure exclude each other")},
		{"not an IP", []string{"-bind=localhost"}, usageFails("dev", `-bind="localhost" is not an IP address`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, runCommand(t, "dev", tc.args...))
		})
	}
}
