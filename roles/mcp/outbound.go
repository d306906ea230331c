package mcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/opengvp/gvp/internal/media"
	"github.com/opengvp/gvp/internal/media/sdpneg"
	gvpsip "github.com/opengvp/gvp/internal/sip"
)

// OutboundCall is a call the mcp placed (the leg a bridge transfer connects the caller to).
// Its in-dialog requests follow the route set of the 200 (reversed Record-Route).
type OutboundCall struct {
	m    *MCP
	dlg  *sipgo.DialogClientSession
	sess *media.Session
	once sync.Once
	done chan struct{}
	// digits receives the keys the callee sends (RFC 4733), when set (while bridged).
	digits atomic.Pointer[func(rune)]
	// SetupTime is from INVITE to 200.
	SetupTime time.Duration
}

// DialError is a final non-2xx answer to an outbound INVITE.
type DialError struct {
	Code   int
	Reason string
}

func (e *DialError) Error() string { return fmt.Sprintf("dial: %d %s", e.Code, e.Reason) }

// DialOptions adds to Dial.
type DialOptions struct {
	// Headers are added to the INVITE (e.g. X-Genesys-GVP-Session-ID to tie the call to the
	// inbound call).
	Headers map[string]string
	// OnProgress, when set, is called on Dial's goroutine for each provisional response above
	// 100. early is the call's media session when the response carried an SDP answer (early
	// media: the session is started on it and receives the callee's audio), else nil.
	OnProgress func(code int, early *media.Session)
}

// Dial places an outbound call to target from this mcp's SIP address, with a media session
// of its own, and returns once it is answered and acknowledged. A non-2xx answer is a
// *DialError; when ctx ends first the INVITE is cancelled. Outbound calls do not count
// against mcp.max_sessions: they belong to an inbound call.
func (m *MCP) Dial(ctx context.Context, target string, opts DialOptions) (*OutboundCall, error) {
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		return nil, fmt.Errorf("dial %q: %w", target, err)
	}
	o := &OutboundCall{m: m, done: make(chan struct{})}
	scfg := media.DefaultSessionConfig()
	scfg.OnDigit = func(d media.Digit) {
		if f := o.digits.Load(); f != nil {
			(*f)(d.Digit)
		}
	}
	sess, err := m.engine.NewSession(scfg)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	o.sess = sess
	neg, err := sdpneg.New(m.negCfg, sdpneg.Local{Addr: m.mediaIP, Port: sess.Port()})
	var offer []byte
	if err == nil {
		offer, err = neg.Offer()
	}
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("dial: %w", err)
	}
	transport := gvpsip.UDP
	if t, ok := uri.UriParams.Get("transport"); ok && uri.UriParams != nil {
		transport = strings.ToLower(t)
	}
	req := sip.NewRequest(sip.INVITE, uri)
	req.SetTransport(strings.ToUpper(transport))
	m.setLocalAddr(req)
	req.SetBody(offer)
	req.AppendHeader(sip.NewHeader("Content-Type", contentSDP))
	req.AppendHeader(sip.NewHeader("Allow", allowed))
	req.AppendHeader(&sip.ContactHeader{Address: m.contactURI(transport)})
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "mcp", Host: m.host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&from)
	for k, v := range opts.Headers {
		req.AppendHeader(sip.NewHeader(k, v))
	}
	start := time.Now()
	dlg, err := m.dialer.WriteInvite(ctx, req)
	if err != nil {
		sess.Close()
		return nil, fmt.Errorf("dial: %w", err)
	}
	o.dlg = dlg
	var early []byte // the SDP answer the session was started on before the 200
	onResponse := func(res *sip.Response) error {
		if !res.IsProvisional() || res.StatusCode == 100 {
			return nil
		}
		var es *media.Session
		if body := res.Body(); len(body) > 0 && early == nil {
			med, err := neg.ParseAnswer(body)
			if err == nil {
				err = sess.Start(med)
			}
			if err == nil {
				early, es = body, sess
			} else {
				m.log.Debug().Err(err).Int("status", res.StatusCode).Msg("dial: early media answer not usable")
			}
		} else if early != nil {
			es = sess
		}
		if opts.OnProgress != nil {
			opts.OnProgress(res.StatusCode, es)
		}
		return nil
	}
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: onResponse}); err != nil {
		sess.Close()
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			return nil, &DialError{Code: de.Res.StatusCode, Reason: de.Res.Reason}
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	o.SetupTime = time.Since(start)
	if body := dlg.InviteResponse.Body(); early == nil || (len(body) > 0 && !bytes.Equal(body, early)) {
		// No early media, or a 200 whose answer differs from the early one: it wins.
		var med sdpneg.Media
		if med, err = neg.ParseAnswer(body); err == nil {
			err = sess.Start(med)
		}
	}
	if aerr := dlg.Ack(ctx); err == nil {
		err = aerr
	}
	if err != nil {
		_ = o.Hangup(context.Background())
		return nil, fmt.Errorf("dial: %w", err)
	}
	go func() {
		<-dlg.Context().Done()
		o.release()
	}()
	return o, nil
}

func (o *OutboundCall) release() {
	o.once.Do(func() {
		o.sess.Close()
		o.dlg.Close()
		close(o.done)
	})
}

// OnDigits sends the keys the callee presses to f (nil: nowhere). f runs on a media goroutine
// and must not block.
func (o *OutboundCall) OnDigits(f func(rune)) {
	if f == nil {
		o.digits.Store(nil)
		return
	}
	o.digits.Store(&f)
}

// Media returns the outbound leg's media session.
func (o *OutboundCall) Media() *media.Session { return o.sess }

// Done is closed when the call has ended (either side hung up).
func (o *OutboundCall) Done() <-chan struct{} { return o.done }

// Hangup sends BYE (nothing when the call already ended) and releases the media.
func (o *OutboundCall) Hangup(ctx context.Context) error {
	defer o.release()
	select {
	case <-o.done:
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, byeTimeout)
	defer cancel()
	if err := o.dlg.Bye(ctx); err != nil {
		return fmt.Errorf("hang up outbound call: %w", err)
	}
	return nil
}
