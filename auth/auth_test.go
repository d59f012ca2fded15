package auth

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// tokenRule allows the token "good", refuses "teapot" with a code of its own, and
// refuses anything else.
var tokenRule = AuthorizerFunc(func(_ context.Context, a Access) error {
	switch a.Token {
	case "good":
		return nil
	case "teapot":
		return status.Error(codes.Unauthenticated, "teapot")
	}
	return errors.New("no token")
})

func TestGRPCCallsAreAuthorized(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(UnaryInterceptor(tokenRule)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln)
	defer srv.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, tc := range []struct {
		token string
		want  codes.Code
	}{
		{"good", codes.OK},
		{"", codes.PermissionDenied},
		{"teapot", codes.Unauthenticated},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if tc.token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, TokenMetadata, tc.token)
		}
		_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if status.Code(err) != tc.want {
			t.Errorf("token %q: %v, want %v", tc.token, err, tc.want)
		}
	}
}

func TestHTTPRequestsAreAuthorized(t *testing.T) {
	refuse := func(w http.ResponseWriter, err error) { http.Error(w, err.Error(), http.StatusForbidden) }
	h := HTTP(tokenRule, "GET /x", refuse, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for token, want := range map[string]int{"good": http.StatusNoContent, "": http.StatusForbidden} {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set(TokenHeader, token)
		w := httptest.NewRecorder()
		h(w, r)
		if w.Code != want {
			t.Errorf("token %q: %d, want %d", token, w.Code, want)
		}
	}
	// Without an Authorizer, everything is allowed.
	w := httptest.NewRecorder()
	HTTP(nil, "GET /x", refuse, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })(w, httptest.NewRequest("GET", "/x", nil))
	if w.Code != http.StatusNoContent {
		t.Errorf("nil Authorizer: %d", w.Code)
	}
}
