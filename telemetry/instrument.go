package telemetry

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// LatencyBuckets are the histogram buckets of request latencies, in seconds: from a
// local read (a millisecond) to a write that waits out an election or a slow event
// store (tens of seconds).
var LatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// HTTPMetrics times HTTP requests by route pattern.
type HTTPMetrics struct {
	vec *prometheus.HistogramVec
}

// NewHTTPMetrics registers grid_http_request_duration_seconds{route} in r.
func NewHTTPMetrics(r *Registry) *HTTPMetrics {
	m := &HTTPMetrics{vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help:    "Time to serve an HTTP request, by route pattern; a stream's time is how long it stayed open.",
		Buckets: LatencyBuckets,
	}, []string{"route"})}
	r.Register(m.vec)
	return m
}

// Wrap times h under route. The route's histogram is looked up once, here, so a
// request only adds one observation.
func (m *HTTPMetrics) Wrap(route string, h http.HandlerFunc) http.HandlerFunc {
	obs := m.vec.WithLabelValues(route)
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() { obs.Observe(time.Since(start).Seconds()) }()
		h(w, r)
	}
}

// RPCMetrics times gRPC calls a process serves, by method and status code.
type RPCMetrics struct {
	vec *prometheus.HistogramVec
}

// NewRPCMetrics registers grid_rpc_request_duration_seconds{method,code} in r.
func NewRPCMetrics(r *Registry) *RPCMetrics {
	m := &RPCMetrics{vec: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "rpc", Name: "request_duration_seconds",
		Help:    "Time to serve a gRPC call, by full method name and status code; a stream's time is how long it stayed open.",
		Buckets: LatencyBuckets,
	}, []string{"method", "code"})}
	r.Register(m.vec)
	return m
}

// ServerOptions are the interceptors that time every call, to be chained first so
// that they also count the calls that authorization refuses.
func (m *RPCMetrics) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(m.unary), grpc.ChainStreamInterceptor(m.stream)}
}

func (m *RPCMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	m.observe(info.FullMethod, start, err)
	return resp, err
}

func (m *RPCMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := h(srv, ss)
	m.observe(info.FullMethod, start, err)
	return err
}

func (m *RPCMetrics) observe(method string, start time.Time, err error) {
	m.vec.WithLabelValues(method, codeOf(err)).Observe(time.Since(start).Seconds())
}
func codeOf(err error) string {
	return status.Code(err).String()
}
