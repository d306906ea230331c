package mcp

import (
	"context"
	"time"
)

// DefaultFetchTimeout bounds loading one announcement prompt.
const DefaultFetchTimeout = 10 * time.Second

// AudioLoader returns the 8 kHz mono samples of a prompt URL. Implementations must be safe for
// concurrent use and should share decoded audio between calls (the samples are never
// modified). The default is the VoiceXML runtime's loader (internal/fetch's shared cache and
// a decoded-audio cache), so announcements and VoiceXML prompts share one cache.
type AudioLoader interface {
	LoadAudio(ctx context.Context, rawURL string) ([]int16, error)
}
