//go:build linux

package chaos

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestPartitionDropsAndHeals checks the network under the chaos suite with a real
// connection: between two namespaces it connects, times out (no refusal: the packets
// are dropped) while they are partitioned, and connects again after Heal.
func TestPartitionDropsAndHeals(t *testing.T) {
	requireNetns(t)
	a, b := &host{name: "ta", ip: subnet + "201"}, &host{name: "tb", ip: subnet + "202"}
	n := newNetwork(t, []*host{a, b})
	var ln net.Listener
	if err := inNetns(b, func() (err error) {
		ln, err = net.Listen("tcp", b.ip+":9000")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dial := func() error {
		return inNetns(a, func() error {
			c, err := net.DialTimeout("tcp", b.ip+":9000", time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
	}
	if err := dial(); err != nil {
		t.Fatalf("before the partition: %v", err)
	}
	if err := n.Partition([]*host{a}, []*host{b}); err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if err := dial(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("during the partition: %v; want a timeout", err)
	}
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err != nil {
		t.Fatalf("after healing: %v", err)
	}
}
