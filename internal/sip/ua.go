package sip

import (
	"context"
	"errors"
	"net"

	"github.com/emiago/sipgo"
)

// NewUA returns a sipgo user agent named name (the User-Agent header) whose From/Contact host
// is hostname. Logging goes through log/slog, which gvp's logging package bridges to zerolog.
func NewUA(name, hostname string, opts ...sipgo.UserAgentOption) (*sipgo.UserAgent, error) {
	all := append([]sipgo.UserAgentOption{sipgo.WithUserAgent(name), sipgo.WithUserAgentHostname(hostname)}, opts...)
	return sipgo.NewUA(all...)
}

// Serve serves srv on every listener of l until ctx ends or a listener fails; it returns nil
// when ctx ended. The listeners are closed on return.
func Serve(ctx context.Context, srv *sipgo.Server, l *Listeners) error {
	errc := make(chan error, 2)
	n := 0
	if l.UDP != nil {
		n++
		go func() { errc <- srv.ServeUDP(l.UDP) }()
	}
	if l.TCP != nil {
		n++
		go func() { errc <- srv.ServeTCP(l.TCP) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		n--
	}
	l.Close()
	for ; n > 0; n-- {
		<-errc
	}
	if err != nil && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
		return err
	}
	return nil
}
