package mcp

import (
	"context"
	"time"

	"github.com/opengvp/gvp/internal/media"
)

// Application runs the service of an answered call. Run is called on the call's own
// goroutine right after the 200 OK; ctx is cancelled when the call ends (the caller hung up,
// the session expired, the mcp stops). When Run returns the mcp hangs up with BYE unless the
// call has already ended; an error other than ErrCallEnded ends it with reason "error".
//
// The VoiceXML interpreter sits behind this interface (voicexml.go, on internal/vxmlcall):
// prompts map to Call.Play (barge-in), input to Call.WaitDigit, <record> to the media sink,
// blind <transfer> to Call.Refer, <disconnect> to Call.Hangup.
type Application interface {
	Run(ctx context.Context, c *Call) error
}

// fetchError marks a failure to load a prompt.
type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// announcement is the RFC 4240 service: play the audio Repeat times (0 = until the caller
// hangs up or Duration ends) with Delay of silence between plays, then return (BYE).
type announcement struct {
	loader  AudioLoader
	timeout time.Duration
}

func (a announcement) Run(ctx context.Context, c *Call) error {
	lctx, cancel := context.WithTimeout(c.entry.fetchContext(ctx), a.timeout)
	samples, err := a.loader.LoadAudio(lctx, c.entry.URL)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ErrCallEnded
		}
		return &fetchError{err}
	}
	if c.entry.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.entry.Duration)
		defer cancel()
	}
	for i := 0; c.entry.Repeat == 0 || i < c.entry.Repeat; i++ {
		srcs := []media.Source{media.NewPCMSource(samples)}
		if c.entry.Delay > 0 && (c.entry.Repeat == 0 || i+1 < c.entry.Repeat) {
			srcs = append(srcs, media.NewSilenceSource(c.entry.Delay))
		}
		if _, err := c.Play(ctx, false, srcs...); err != nil {
			if ctx.Err() != nil && c.ctx.Err() == nil {
				return nil // duration= reached
			}
			return err
		}
	}
	return nil
}
