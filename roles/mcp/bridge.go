package mcp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/media"
	"github.com/opengvp/gvp/internal/vxml"
)

// Bridge transfer defaults.
const (
	// bridgePipeFrames is the capacity of each direction of a bridge, in 20 ms frames: when
	// the receiving side's playout falls behind, the oldest frames are dropped so the added
	// latency stays under 80 ms.
	bridgePipeFrames = 4
	// DefaultBridgeConnectTimeout bounds the wait for the transfer destination to answer when
	// the request gives no connect timeout (VoiceXML's default connecttimeout, 30 s).
	DefaultBridgeConnectTimeout = 30 * time.Second
	// headerSessionID ties the outbound leg to the caller's GVP session.
	headerSessionID = "X-Genesys-GVP-Session-ID"
	// headerUUI carries the application-to-application information (RFC 7433).
	headerUUI = "User-to-User"
)

// Bridge performs a bridge transfer (VoiceXML 2.0 section 2.3.7): it places a call to
// req.Dest — through mcp.transfer.proxy when set — and, once answered, connects the caller and
// the callee both ways until one of them hangs up or req.MaxTime (0: no limit) passes. The
// caller's prompt in progress is stopped first and the caller's audio sink is removed after;
// DTMF the caller sends while bridged is not buffered for the dialog.
//
// The outcome is a TransferResult status: far_end_disconnect (the callee hung up),
// maxtime_disconnect (the mcp hung the callee up; the caller stays), busy (486, 600),
// noanswer (no answer within req.ConnectTimeout, default DefaultBridgeConnectTimeout, or 408,
// 480, 487), network_busy (503), unknown (any other refusal). When the caller hangs up
// (near_end_disconnect) the callee gets a BYE and Bridge returns ErrCallEnded. A destination
// that is not a SIP URI is a *vxml.Event error.connection.baddestination; a call that cannot
// be sent at all is error.connection.noroute.
//
// Until the callee answers, the caller hears connecting (played once, then silence) when it is
// not nil; else the callee's early media once a provisional response brings an SDP answer,
// or the ringback tone of mcp.transfer.ringback once the callee rings (180).
func (c *Call) Bridge(ctx context.Context, req *vxml.TransferRequest, connecting media.Source) (*vxml.TransferResult, error) {
	if c.ctx.Err() != nil {
		return nil, ErrCallEnded
	}
	var uri sip.Uri
	if err := sip.ParseUri(req.Dest, &uri); err != nil || uri.Host == "" {
		return nil, &vxml.Event{Name: "error.connection.baddestination",
			Message: fmt.Sprintf("transfer destination %q is not a SIP URI", req.Dest)}
	}
	headers := map[string]string{headerSessionID: c.sessionID}
	if req.AAI != "" {
		headers[headerUUI] = encodeUUI(req.AAI)
	}
	if p := c.m.cfg.Transfer.Proxy; p != "" {
		headers["Route"] = "<sip:" + p + ";lr>"
	}
	connectTimeout := req.ConnectTimeout
	if connectTimeout <= 0 {
		connectTimeout = DefaultBridgeConnectTimeout
	}
	log := c.log.With().Str("transfer_dest", req.Dest).Logger()

	type dialed struct {
		o   *OutboundCall
		err error
	}
	dctx, cancelDial := context.WithCancel(context.Background())
	defer cancelDial()
	pre := &preAnswer{c: c, connecting: connecting != nil}
	defer pre.end()
	if connecting != nil {
		pre.play(connecting)
	}
	ch := make(chan dialed, 1)
	go func() {
		o, err := c.m.Dial(dctx, req.Dest, DialOptions{Headers: headers, OnProgress: pre.progress})
		ch <- dialed{o, err}
	}()
	// abandon cancels the INVITE (CANCEL once a provisional response came, as RFC 3261 9.1
	// requires) and hangs up a callee whose answer crossed the cancellation, in the background.
	abandon := func() {
		cancelDial()
		go func() {
			if d := <-ch; d.o != nil {
				_ = d.o.Hangup(context.Background())
			}
		}()
	}
	timer := time.NewTimer(connectTimeout)
	defer timer.Stop()
	var out *OutboundCall
	select {
	case d := <-ch:
		if d.err != nil {
			return dialOutcome(d.err)
		}
		out = d.o
	case <-timer.C:
		abandon()
		log.Info().Dur("connect_timeout", connectTimeout).Msg("bridge transfer: no answer")
		return &vxml.TransferResult{Status: vxml.TransferNoAnswer}, nil
	case <-c.ctx.Done():
		abandon()
		return nil, ErrCallEnded
	case <-ctx.Done():
		abandon()
		return nil, ctx.Err()
	}
	log.Info().Dur("setup_time", out.SetupTime).Str("type", req.Type).Msg("bridge transfer: connected")
	if req.Type == "consultation" {
		c.handOver(out, req.MaxTime)
		return &vxml.TransferResult{Status: vxml.TransferConnected}, nil
	}
	return c.bridgeCall(ctx, out, req.MaxTime)
}

// handOver keeps the caller and the answered callee of a consultation transfer connected
// after the VoiceXML session has ended, until one of them hangs up or maxTime passes; then
// the call ends (BYE to whoever is left, CDR reason transfer). It runs on the interpreter's
// goroutine, so the application's Run sees it in c.handover when the session ends.
func (c *Call) handOver(out *OutboundCall, maxTime time.Duration) {
	c.handover.Go(func() {
		res, err := c.bridgeCall(c.ctx, out, maxTime)
		if err != nil {
			return // the caller hung up: the call has ended and the callee got its BYE
		}
		c.end(billing.EndTransfer, "consultation transfer: "+res.Status, true)
	})
}

// preAnswer is what the caller of a bridge transfer hears before the callee answers.
type preAnswer struct {
	c          *Call
	connecting bool // the document's transferaudio plays: nothing replaces it
	mu         sync.Mutex
	done       bool
	pb         *media.Playback
	ringing    bool
	early      *framePipe // the callee's early media on its way to the caller
}

func (p *preAnswer) play(src media.Source) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.done {
		p.pb = p.c.sess.Play(src)
	}
}

// progress is Dial's OnProgress: early media when the callee sends some, else ringback.
func (p *preAnswer) progress(code int, early *media.Session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.done || p.connecting:
	case early != nil:
		if p.early == nil {
			p.early = newFramePipe(bridgePipeFrames)
			early.SetSink(p.early)
			p.pb = p.c.sess.Play(p.early)
		}
	case code == 180 && !p.ringing && p.early == nil && p.c.m.ringback != nil:
		p.ringing = true
		p.pb = p.c.sess.Play(media.NewToneSource(*p.c.m.ringback))
	}
}

// end stops what plays (unless the bridge replaced it already) and ignores later progress:
// a dial abandoned on timeout may still get a 180.
func (p *preAnswer) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	if p.pb != nil {
		p.pb.Stop()
	}
	if p.early != nil {
		p.early.Close()
	}
}

// bridgeCall connects the caller with an answered outbound call until one side ends it.
func (c *Call) bridgeCall(ctx context.Context, out *OutboundCall, maxTime time.Duration) (*vxml.TransferResult, error) {
	began := time.Now()
	up := newFramePipe(bridgePipeFrames)   // caller -> callee
	down := newFramePipe(bridgePipeFrames) // callee -> caller
	c.sess.StopPlayback()
	// Keys the caller presses while bridged are meant for the callee, not type-ahead for the
	// dialog: they go to the callee (RFC 4733) and are not buffered until the bridge ends.
	c.setDigitRelay(out.Media())
	defer c.setDigitRelay(nil)
	// And the callee's keys go to the caller.
	out.OnDigits(func(d rune) { c.relayDigit(c.sess, d, "the caller") })
	defer out.OnDigits(nil)
	c.sess.SetSink(up)
	out.Media().SetSink(down)
	toCallee := out.Media().Play(up)
	toCaller := c.sess.Play(down)
	defer func() {
		c.sess.SetSink(nil)
		out.Media().SetSink(nil)
		up.Close()
		down.Close()
		toCaller.Stop()
		toCallee.Stop()
	}()

	var limit <-chan time.Time
	if maxTime > 0 {
		t := time.NewTimer(maxTime)
		defer t.Stop()
		limit = t.C
	}
	status := vxml.TransferUnknown
	select {
	case <-out.Done():
		status = vxml.TransferFarEndDisconnect
	case <-limit:
		status = vxml.TransferMaxTimeDisconnect
	case <-c.ctx.Done():
		status = vxml.TransferNearEndDisconnect
	case <-ctx.Done():
		status = vxml.TransferNearEndDisconnect
	}
	if status != vxml.TransferFarEndDisconnect {
		if err := out.Hangup(context.Background()); err != nil {
			c.log.Warn().Err(err).Msg("bridge transfer: hanging up the callee failed")
		}
	}
	d := time.Since(began)
	c.log.Info().Str("status", status).Dur("duration", d).Uint64("frames_dropped", up.Dropped()+down.Dropped()).
		Msg("bridge transfer ended")
	switch {
	case status != vxml.TransferNearEndDisconnect:
		return &vxml.TransferResult{Status: status, Duration: d}, nil
	case c.ctx.Err() != nil:
		return nil, ErrCallEnded
	default:
		return nil, ctx.Err()
	}
}

// relayDigit sends d to s as an RFC 4733 event (one leg of a bridge to the other); a failure
// is only logged.
func (c *Call) relayDigit(s *media.Session, d rune, to string) {
	if err := s.SendDigits(string(d), 0); err != nil {
		c.log.Debug().Err(err).Str("digit", string(d)).Msg("dtmf not relayed to " + to)
	}
}

// setDigitRelay sends the digits the caller presses to callee (RFC 4733) instead of buffering
// them for the dialog; nil turns buffering back on.
func (c *Call) setDigitRelay(callee *media.Session) {
	c.dmu.Lock()
	c.relay = callee
	c.dmu.Unlock()
}

// dialOutcome maps a failed outbound INVITE to a transfer status or error event.
func dialOutcome(err error) (*vxml.TransferResult, error) {
	var de *DialError
	if !errors.As(err, &de) {
		return nil, &vxml.Event{Name: "error.connection.noroute", Message: err.Error()}
	}
	status := vxml.TransferUnknown
	switch de.Code {
	case 486, 600:
		status = vxml.TransferBusy
	case 408, 480, 487:
		status = vxml.TransferNoAnswer
	case 503:
		status = vxml.TransferNetworkBusy
	}
	return &vxml.TransferResult{Status: status}, nil
}

// encodeUUI formats application-to-application information as a User-to-User value
// (RFC 7433): as is when it is a SIP token, hex-encoded otherwise.
func encodeUUI(aai string) string {
	for i := 0; i < len(aai); i++ {
		if !isTokenChar(aai[i]) {
			return hex.EncodeToString([]byte(aai)) + ";encoding=hex"
		}
	}
	return aai
}

// isTokenChar reports whether b may appear in a SIP token (RFC 3261 25.1).
func isTokenChar(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	switch b {
	case '-', '.', '!', '%', '*', '_', '+', '`', '\'', '~':
		return true
	}
	return false
}

// framePipe carries 20 ms frames from one media session's Sink to another session's Source:
// a ring of at most cap frames that drops its oldest frame when a new one arrives full, so
// the latency it adds stays bounded. Reading an empty pipe gives a silence frame (the
// playback goes on); after Close reads return io.EOF and writes are ignored. Both sides run
// on media goroutines and never block. It is safe for concurrent use.
type framePipe struct {
	mu      sync.Mutex
	slots   [][media.FrameSamples]int16
	lens    []int
	head, n int
	closed  bool
	dropped uint64
}

func newFramePipe(capacity int) *framePipe {
	return &framePipe{slots: make([][media.FrameSamples]int16, capacity), lens: make([]int, capacity)}
}

// WriteFrame queues a copy of frame (at most FrameSamples samples), dropping the oldest
// queued frame when the pipe is full.
func (p *framePipe) WriteFrame(frame []int16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.slots) == 0 {
		return
	}
	if p.n == len(p.slots) {
		p.head = (p.head + 1) % len(p.slots)
		p.n--
		p.dropped++
	}
	i := (p.head + p.n) % len(p.slots)
	p.lens[i] = copy(p.slots[i][:], frame)
	p.n++
}

// ReadFrame fills frame with the oldest queued frame, or with silence when none is queued;
// it returns io.EOF once the pipe is closed.
func (p *framePipe) ReadFrame(frame []int16) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, io.EOF
	}
	if p.n == 0 {
		clear(frame)
		return len(frame), nil
	}
	n := copy(frame, p.slots[p.head][:p.lens[p.head]])
	clear(frame[n:])
	p.head = (p.head + 1) % len(p.slots)
	p.n--
	return len(frame), nil
}

// Close ends the pipe: queued frames are discarded and reads return io.EOF.
func (p *framePipe) Close() {
	p.mu.Lock()
	p.closed = true
	p.n = 0
	p.mu.Unlock()
}

// Len returns the number of queued frames.
func (p *framePipe) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// Dropped returns how many frames were dropped because the pipe was full.
func (p *framePipe) Dropped() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// ensure the pipe fits both ends of a bridge.
var (
	_ media.Sink   = (*framePipe)(nil)
	_ media.Source = (*framePipe)(nil)
)
