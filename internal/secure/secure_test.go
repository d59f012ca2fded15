package secure

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tls := Protection{Name: "TLS (-ca-file, -cert-file, -key-file)", On: true}
	key := Protection{Name: "gossip encryption (-encrypt)", On: true}
	acl := Protection{Name: "ACLs (-acl-enabled)", On: true}
	off := func(p Protection) Protection { p.On = false; return p }
	for _, tc := range []struct {
		name     string
		bind     string
		insecure bool
		ps       []Protection
		wantOff  []string
		wantErr  string // substring; "" for no error
	}{
		{name: "loopback, nothing on", bind: "127.0.0.1", ps: []Protection{off(tls), off(key), off(acl)}},
		{name: "loopback 127.0.0.8", bind: "127.0.0.8", ps: []Protection{off(tls)}},
		{name: "loopback ipv6", bind: "::1", ps: []Protection{off(tls)}},
		{name: "all on", bind: "0.0.0.0", ps: []Protection{tls, key, acl}},
		{name: "all on, private IP", bind: "10.1.2.3", ps: []Protection{tls, key, acl}},
		{name: "unspecified, nothing on", bind: "0.0.0.0", ps: []Protection{off(tls), off(key), off(acl)},
			wantErr: "refusing to run on 0.0.0.0, which is not a loopback address, without TLS (-ca-file, -cert-file, -key-file), gossip encryption (-encrypt) and ACLs (-acl-enabled): turn them on, or give -insecure to run without them"},
		{name: "one missing", bind: "192.168.1.5", ps: []Protection{tls, off(key), acl},
			wantErr: "without gossip encryption (-encrypt): turn them on"},
		{name: "two missing", bind: "::", ps: []Protection{off(tls), key, off(acl)},
			wantErr: "without TLS (-ca-file, -cert-file, -key-file) and ACLs (-acl-enabled):"},
		{name: "insecure", bind: "0.0.0.0", insecure: true, ps: []Protection{off(tls), key, off(acl)},
			wantOff: []string{tls.Name, acl.Name}},
		{name: "insecure, all on", bind: "0.0.0.0", insecure: true, ps: []Protection{tls, key, acl}},
		{name: "insecure, loopback", bind: "127.0.0.1", insecure: true, ps: []Protection{off(tls)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotOff, err := Check(tc.bind, tc.insecure, tc.ps...)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			case tc.wantErr != "" && strings.Contains(err.Error(), "\n"):
				t.Fatalf("error %q is not one line", err)
			}
			if strings.Join(gotOff, "|") != strings.Join(tc.wantOff, "|") {
				t.Errorf("off %q, want %q", gotOff, tc.wantOff)
			}
		})
	}
}

func TestWarning(t *testing.T) {
	got := Warning("0.0.0.0", []string{"TLS", "ACLs"})
	want := "running insecure (-insecure) on 0.0.0.0, which is not a loopback address: without TLS and ACLs"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
