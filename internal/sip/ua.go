package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

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

// ServingTimeout bounds WaitServing.
const ServingTimeout = 2 * time.Second

// WaitServing waits until sipgo's transport layer has the UDP listener addr in its connection
// pool (Serve registers it asynchronously): a request sent from that address before then would
// make sipgo try to bind it a second time.
func WaitServing(ua *sipgo.UserAgent, addr string) error {
	deadline := time.Now().Add(ServingTimeout)
	for {
		if c, err := ua.TransportLayer().GetConnection("udp", addr); err == nil && c != nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sip udp listener %s not serving after %v", addr, ServingTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}
