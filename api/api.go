// Package api is the Go client of a Grid server's HTTP API. The CLI in command/ and the
// end-to-end tests use it; so can any program that drives a grid.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultAddress is the HTTP API of a server on this machine with default ports.
const DefaultAddress = "http://127.0.0.1:7000"

// AddressEnv names the environment variable that overrides DefaultAddress.
const AddressEnv = "GRID_ADDR"

// TokenEnv names the environment variable that holds the ACL token the CLI sends.
const TokenEnv = "GRID_TOKEN"

// TokenHeader is the header that carries the caller's ACL token.
const TokenHeader = "X-Grid-Token"

// Config configures a Client.
type Config struct {
	// Address is the server's HTTP API, "http://host:port" or "host:port".
	// Default: $GRID_ADDR, else DefaultAddress.
	Address string
	// HTTPClient sends the requests. Default: a client with a 60s timeout.
	HTTPClient *http.Client
	// TLS is the client's TLS, for https:// addresses (tls.go). Default: from
	// $GRID_CACERT, $GRID_CLIENT_CERT and $GRID_CLIENT_KEY.
	TLS TLSConfig
	// Token is the ACL token sent with every request, in X-Grid-Token; "" sends none.
	// DefaultConfig takes it from $GRID_TOKEN.
	Token string
}

// DefaultConfig returns the configuration that the CLI starts from.
func DefaultConfig() *Config {
	addr := os.Getenv(AddressEnv)
	t := tlsFromEnv()
	if addr == "" {
		addr = DefaultAddress
		if !t.IsZero() {
			addr = "https://" + strings.TrimPrefix(DefaultAddress, "http://")
		}
	}
	return &Config{Address: addr, HTTPClient: &http.Client{Timeout: 60 * time.Second}, TLS: t, Token: os.Getenv(TokenEnv)}
}

// Client talks to one server's HTTP API. Any server answers: writes are forwarded to
// the leader by the server itself.
type Client struct {
	base  *url.URL
	http  *http.Client
	tls   TLSConfig
	token string
	// stale sends ?stale with every GET (WithStale).
	stale bool
}

// NewClient validates cfg and returns a client.
func NewClient(cfg *Config) (*Client, error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	addr := cfg.Address
	if addr == "" {
		addr = DefaultAddress
	}
	if !strings.Contains(addr, "://") {
		if cfg.TLS.IsZero() {
			addr = "http://" + addr
		} else {
			addr = "https://" + addr
		}
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("invalid address %q: want http://host:port", cfg.Address)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid address %q: scheme must be http or https", cfg.Address)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = DefaultConfig().HTTPClient
	}
	hc, err = withTLS(hc, cfg.TLS, u.Hostname())
	if err != nil {
		return nil, err
	}
	return &Client{base: u, http: hc, tls: cfg.TLS, token: cfg.Token}, nil
}

// WithStale returns a copy of the client whose reads (GETs) say ?stale: the server
// asked answers from its own state, which may lag the leader's, instead of
// forwarding to the leader. Such reads go on while there is no leader.
func (c *Client) WithStale() *Client {
	cp := *c
	cp.stale = true
	return &cp
}

// Address returns the base URL the client talks to.
func (c *Client) Address() string { return c.base.String() }

// StatusError is the error for a response other than 2xx. Message is the server's
// "error" field when it sent one.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Code)
}

// IsNotFound reports whether err is a 404 from the server.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// do sends a request and returns the response when its status is 2xx; otherwise it
// returns a *StatusError. The caller closes the body.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Response, error) {
	u := *c.base
	// path arrives escaped (names in it went through url.PathEscape): keep it as is.
	escaped := strings.TrimRight(u.EscapedPath(), "/") + path
	unescaped, err := url.PathUnescape(escaped)
	if err != nil {
		return nil, fmt.Errorf("invalid path %q: %w", path, err)
	}
	u.Path, u.RawPath = unescaped, escaped
	if c.stale && method == http.MethodGet {
		query = withStale(query)
	}
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set(TokenHeader, c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, c.explainTLS(err))
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb errorBody
	msg := strings.TrimSpace(string(raw))
	if json.Unmarshal(raw, &eb) == nil && eb.Error != "" {
		msg = eb.Error
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return nil, explainStatus(&StatusError{Code: resp.StatusCode, Message: msg})
}

// withStale is a copy of query that also says stale; the caller's stays as it was.
func withStale(query url.Values) url.Values {
	out := url.Values{"stale": {""}}
	for k, v := range query {
		out[k] = v
	}
	return out
}

// get decodes the JSON answer to GET path into out.
func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	return c.call(ctx, http.MethodGet, path, query, nil, out)
}

// call sends in (if not nil) as JSON and decodes the answer into out (if not nil).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.do(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}
