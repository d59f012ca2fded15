package command

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/sutragrid/grid/api"
	"github.com/sutragrid/grid/mtls"
	"github.com/sutragrid/grid/storage"
)

// tlsFlags are -ca-file, -cert-file and -key-file of the long-running commands.
type tlsFlags struct {
	files mtls.Files
}

func (f *tlsFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.files.CAFile, "ca-file", "", "")
	fs.StringVar(&f.files.CertFile, "cert-file", "", "")
	fs.StringVar(&f.files.KeyFile, "key-file", "", "")
}

// load loads the files, if any, into a source whose certificate names one of roles;
// nil without files (TLS off).
func (f *tlsFlags) load(roles ...mtls.Role) (*mtls.Source, error) {
	return mtls.LoadRole(f.files, roles...)
}

// tlsHelp is the help text of the TLS flags of server, agent and storage.
const tlsHelp = `
  -ca-file=FILE, -cert-file=FILE, -key-file=FILE
    Mutual TLS: the grid's CA certificate, and this process's certificate and key
    (grid tls cert create). All three, or none for plaintext. SIGHUP reloads them.`

// onHangup runs reload on every SIGHUP until the returned stop is called. Without
// anything to reload (reload nil) SIGHUP keeps its default effect.
func onHangup(reload func() error) (stop func()) {
	return catchHangups(reload != nil).serve(reload)
}

// sighups holds the SIGHUPs a process takes before it can reload, so that one that
// comes while the process starts (a configuration tool that writes the files and
// signals at once) neither stops it nor is lost: serve then runs it.
type sighups struct {
	ch chan os.Signal
}

// catchHangups takes SIGHUP from now on, when want; else SIGHUP keeps its default
// effect, and so does what it returns.
func catchHangups(want bool) *sighups {
	if !want {
		return nil
	}
	h := &sighups{ch: make(chan os.Signal, 1)} // several before serve make one reload
	signal.Notify(h.ch, syscall.SIGHUP)
	return h
}

// serve runs reload on every SIGHUP, a SIGHUP taken before included, until the
// returned stop is called. With a nil reload it stops taking SIGHUP at once.
func (h *sighups) serve(reload func() error) (stop func()) {
	if h == nil {
		return func() {}
	}
	if reload == nil {
		signal.Stop(h.ch)
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-h.ch:
				_ = reload() // it logs what it did, or why it could not
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(h.ch)
		close(done)
	}
}

// clientTLSFlags binds -ca-cert, -client-cert and -client-key of the client commands.
func (m *Meta) clientTLSFlags(fs *flag.FlagSet) {
	fs.StringVar(&m.tls.CACert, "ca-cert", "", "")
	fs.StringVar(&m.tls.ClientCert, "client-cert", "", "")
	fs.StringVar(&m.tls.ClientKey, "client-key", "", "")
}

// apiConfig is the API client's configuration: the environment's, with the flags
// over it. With TLS and no address given, the default address is https://.
func (m *Meta) apiConfig() *api.Config {
	cfg := api.DefaultConfig()
	if m.address != "" {
		cfg.Address = m.address
	}
	if m.token != "" {
		cfg.Token = m.token
	}
	for _, f := range []struct{ flag, dst *string }{
		{&m.tls.CACert, &cfg.TLS.CACert}, {&m.tls.ClientCert, &cfg.TLS.ClientCert}, {&m.tls.ClientKey, &cfg.TLS.ClientKey},
	} {
		if *f.flag != "" {
			*f.dst = *f.flag
		}
	}
	if cfg.Address == api.DefaultAddress && !cfg.TLS.IsZero() {
		cfg.Address = "https://" + strings.TrimPrefix(api.DefaultAddress, "http://")
	}
	return cfg
}

// clientTLSHelp is the help text of the client commands' TLS flags.
const clientTLSHelp = `

  -ca-cert=FILE
    The grid's CA certificate, to check the server's HTTPS certificate with.
    Overrides GRID_CACERT.

  -client-cert=FILE, -client-key=FILE
    A client certificate and its key (grid tls cert create -client), for servers
    that verify HTTPS clients. Override GRID_CLIENT_CERT and GRID_CLIENT_KEY.`

// storageTLS sets a storage node's TLS from its flags, and returns what reloads it on
// SIGHUP (nil without TLS).
func storageTLS(cfg *storage.Config, tf *tlsFlags, callers string, logger hclog.Logger) (func() error, error) {
	src, err := tf.load(mtls.RoleNode, mtls.RoleServer)
	if err != nil {
		return nil, err
	}
	if src == nil {
		if callers != "" {
			return nil, fmt.Errorf("-callers needs TLS (-ca-file, -cert-file, -key-file)")
		}
		return nil, nil
	}
	cfg.TLS = src
	if callers != "" {
		if cfg.Callers, err = mtls.ParseRoles(callers); err != nil {
			return nil, fmt.Errorf("-callers: %w", err)
		}
	}
	return func() error {
		ch, err := src.Reload()
		if err != nil {
			logger.Error("TLS reload failed", "error", err)
			return err
		}
		logger.Info("TLS certificates reloaded", ch.LogArgs()...)
		return nil
	}, nil
}
