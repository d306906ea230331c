package vxml

import (
	"context"
	"html"
	"strings"
	"time"
)

// Defaults of the fetchaudio timing properties (VoiceXML 2.0 section 6.3.5 leaves them to the
// platform and gives these values as examples).
const (
	// DefaultFetchAudioDelay is the fetchaudiodelay property's default: how long a fetch
	// runs before its fetchaudio starts, so a short delay stays silent rather than playing a
	// clip that is cut off at once.
	DefaultFetchAudioDelay = 2 * time.Second
	// DefaultFetchAudioMinimum is the fetchaudiominimum property's default: once started,
	// the fetchaudio plays at least this long (or to its end) even if the fetch completes.
	DefaultFetchAudioMinimum = 5 * time.Second
)

// fetchAudio is the fetchaudio in effect for one fetch.
type fetchAudio struct {
	url            string
	delay, minimum time.Duration
}

// fetchAudioFor returns the fetchaudio of a fetch (VoiceXML 2.0 sections 6.1.1 and 6.3.5):
// only documents (<goto>, <submit>, <subdialog>, <link>, <choice> and their application
// root) and <data> have one — there is none for audio, grammars and scripts, nor for the
// first document, nor in the final processing state; the element's fetchaudio attribute wins (present but empty: none), else
// the fetchaudio property. The URI is relative to the executing document.
func (c *execCtx) fetchAudioFor(kind FetchKind, attrs map[string]string) (fetchAudio, bool) {
	if c == nil || c.s.final || (kind != FetchDocument && kind != FetchData) || (c.doc == nil && c.app == nil) {
		return fetchAudio{}, false
	}
	item := c.curItem()
	src, ok := attrs["fetchaudio"]
	if !ok {
		src, _ = c.prop(item, "fetchaudio")
	}
	if strings.TrimSpace(src) == "" {
		return fetchAudio{}, false
	}
	u, err := resolve(c.baseURI(), src)
	if err != nil {
		return fetchAudio{}, false // as for a fetchaudio that cannot be fetched: none
	}
	return fetchAudio{
		url:     u,
		delay:   c.timeProp(item, "fetchaudiodelay", "", DefaultFetchAudioDelay),
		minimum: c.timeProp(item, "fetchaudiominimum", "", DefaultFetchAudioMinimum),
	}, true
}

// curItem is the form item being visited, if any.
func (c *execCtx) curItem() *Item {
	if c.form == nil {
		return nil
	}
	return c.form.item
}

// prompt is the fetchaudio as a prompt: the clip alone, without barge-in. Keys pressed
// while it plays are discarded, as during any prompt without barge-in.
func (fa fetchAudio) prompt() *Prompt {
	return &Prompt{
		BargeinType: "speech",
		SSML:        `<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis"><audio src="` + html.EscapeString(fa.url) + `"/></speak>`,
		Parts:       []PromptPart{{Kind: PartAudio, URL: fa.url}},
	}
}

type fetchResult struct {
	resp *FetchResponse
	err  error
}

// fetchWithAudio runs one fetch while the caller hears its fetchaudio (VoiceXML 2.0 sections
// 4.1.8 and 6.1.1; the caller has played the queued prompts): if the fetch has not completed fetchaudiodelay after it began, the fetchaudio starts, and it stops when the
// fetch completes but not before it has played fetchaudiominimum (a clip shorter than that
// just ends; it is not repeated). A fetch that completes within the delay — a cache hit —
// plays nothing. The fetchaudio is best effort: its failures (a clip that cannot be
// fetched, a hangup while it plays) are not thrown here; a hangup shows at the next
// interaction with the caller, as it would without fetchaudio.
func (s *session) fetchWithAudio(ctx context.Context, req *FetchRequest, fa fetchAudio) (*FetchResponse, error) {
	done := make(chan fetchResult, 1)
	go func() {
		resp, err := s.in.cfg.Fetcher.Fetch(ctx, req)
		done <- fetchResult{resp, err}
	}()
	wait := time.NewTimer(fa.delay)
	select {
	case r := <-done:
		wait.Stop()
		return r.resp, r.err
	case <-wait.C:
	}

	s.trace(TracePrompt, "fetchaudio %s while fetching %s", fa.url, req.URL)
	pctx, stop := context.WithCancel(s.ctx)
	defer stop()
	started := time.Now()
	// The session goroutine waits below, so the clip plays on a goroutine of its own.
	played := make(chan error, 1)
	go func() {
		_, err := s.p.Play(pctx, fa.prompt())
		played <- err
	}()
	res := <-done
	// The fetch has completed: the clip ends by itself or is stopped once it has played its
	// minimum.
	minimum := time.NewTimer(fa.minimum - time.Since(started))
	var err error
	select {
	case err = <-played:
	case <-minimum.C:
		stop()
		err = <-played
	}
	minimum.Stop()
	s.trace(TracePrompt, "fetchaudio stopped after %s", time.Since(started).Round(time.Millisecond))
	if err != nil && pctx.Err() == nil {
		s.trace(TracePrompt, "fetchaudio failed: %v", err)
	}
	return res.resp, res.err
}
