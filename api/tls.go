package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"

	"github.com/sutragrid/grid/mtls"
)

// Environment variables that configure the client's TLS, as the CLI's -ca-cert,
// -client-cert and -client-key flags do.
const (
	CACertEnv     = "GRID_CACERT"
	ClientCertEnv = "GRID_CLIENT_CERT"
	ClientKeyEnv  = "GRID_CLIENT_KEY"
)

// TLSConfig names the PEM files of a client of a server's HTTPS API.
type TLSConfig struct {
	// CACert is the grid's CA certificate: the server's certificate must be signed by
	// it and be a Grid server's (or match the address's host name). Empty: the
	// system's roots and the host name are checked.
	CACert string
	// ClientCert and ClientKey are the client's certificate and key, for servers that
	// verify HTTPS clients (grid tls cert create -client).
	ClientCert, ClientKey string
}

// IsZero reports whether no file is named.
func (t TLSConfig) IsZero() bool { return t == TLSConfig{} }

func tlsFromEnv() TLSConfig {
	return TLSConfig{CACert: os.Getenv(CACertEnv), ClientCert: os.Getenv(ClientCertEnv), ClientKey: os.Getenv(ClientKeyEnv)}
}

// withTLS returns hc sending its requests with t's TLS configuration, for the server
// at host. A client whose transport is not an *http.Transport (one that serves
// requests in process, say) is left as it is.
func withTLS(hc *http.Client, t TLSConfig, host string) (*http.Client, error) {
	if t.IsZero() {
		return hc, nil
	}
	conf, err := mtls.APIClientConfig(host, t.CACert, t.ClientCert, t.ClientKey)
	if err != nil {
		return nil, err
	}
	var tr *http.Transport
	switch base := hc.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = base.Clone()
	default:
		return hc, nil
	}
	tr.TLSClientConfig = conf
	c := *hc
	c.Transport = tr
	return &c, nil
}

// plainToHTTPS is what a Go HTTPS server answers a plaintext request with.
const plainToHTTPS = "Client sent an HTTP request to an HTTPS server."

// explainStatus rewords the answer of an HTTPS server to a plaintext request.
func explainStatus(se *StatusError) *StatusError {
	if se.Code == http.StatusBadRequest && strings.Contains(se.Message, plainToHTTPS) {
		se.Message = "the server speaks HTTPS, not HTTP: use an https:// address (-address or " + AddressEnv + ") and the grid's CA (-ca-cert or " + CACertEnv + ")"
	}
	return se
}

// explainTLS adds to a failed request what the server's TLS alert means.
func (c *Client) explainTLS(err error) error {
	if why := mtls.DescribeRemoteError(err, c.tls.ClientCert); why != "" {
		return fmt.Errorf("%s: %w", why, err)
	}
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return fmt.Errorf("the server speaks HTTP, not HTTPS: use an http:// address: %w", err)
	}
	// An HTTPS server answers a plaintext GET or POST with a 400 (explainStatus), and
	// closes the connection on any other method.
	if c.base.Scheme == "http" && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		return fmt.Errorf("the server closed the connection; if it speaks HTTPS, use an https:// address (-address or %s): %w", AddressEnv, err)
	}
	return err
}
