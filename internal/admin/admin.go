// Package admin serves the endpoints every gvp role exposes on its admin port: /healthz (the
// process is alive), /readyz (ready for traffic: 503 with the reason while starting, draining or
// when a dependency is down), /metrics (Prometheus) and, when enabled, /debug/pprof/.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config is the admin listener of a role.
type Config struct {
	// Listen is the host:port of the admin HTTP server; port 0 lets the kernel choose.
	Listen string `mapstructure:"listen"`
	// Pprof serves /debug/pprof/ when true. Default false.
	Pprof bool `mapstructure:"pprof"`
}

// ReadyFunc returns nil when the role is ready for traffic, else the reason it is not.
type ReadyFunc func() error

// NewRegistry returns a Prometheus registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler returns a mux serving /healthz, /readyz, /metrics and optionally /debug/pprof/.
func Handler(ready ReadyFunc, g prometheus.Gatherer, withPprof bool) *http.ServeMux {
	mux := http.NewServeMux()
	Mount(mux, ready, g, withPprof)
	return mux
}

// Mount adds the admin endpoints to an existing mux (roles whose API port is also their admin
// port, configsrv and rs, use this).
func Mount(mux *http.ServeMux, ready ReadyFunc, g prometheus.Gatherer, withPprof bool) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
}

// Server is an HTTP server bound to its address before Start returns.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Listen binds addr and serves h in the background. A serve error after start is sent to fatal.
func Listen(addr string, h http.Handler, fatal func(error)) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		if err != nil && fatal != nil {
			fatal(fmt.Errorf("http server on %s: %w", ln.Addr(), err))
		}
		s.done <- err
	}()
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is "http://" + the bound address.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Shutdown stops accepting connections and waits for active requests until ctx ends, then
// closes what remains.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-s.done
	return err
}

// Serve starts a role's admin endpoints on cfg.Listen.
func Serve(cfg Config, ready ReadyFunc, g prometheus.Gatherer, fatal func(error)) (*Server, error) {
	s, err := Listen(cfg.Listen, Handler(ready, g, cfg.Pprof), fatal)
	if err != nil {
		return nil, fmt.Errorf("admin endpoint: %w", err)
	}
	return s, nil
}
