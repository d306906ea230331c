package mcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/opengvp/gvp/internal/media/wav"
)

// Defaults of the announcement audio loader.
const (
	// DefaultAudioCacheBytes bounds the decoded prompts kept in memory (64 MiB of 16-bit
	// samples: about 70 minutes of 8 kHz audio).
	DefaultAudioCacheBytes = 64 << 20
	// DefaultAudioCacheTTL is how long a loaded prompt is reused before it is loaded again.
	DefaultAudioCacheTTL = 5 * time.Minute
	// DefaultFetchTimeout bounds loading one prompt.
	DefaultFetchTimeout = 10 * time.Second
	// maxAudioFile bounds a prompt file, in bytes (the WAV reader's data limit plus headers).
	maxAudioFile = wav.DefaultMaxDataBytes + 64<<10
)

// AudioLoader returns the 8 kHz mono samples of a prompt URL. Implementations must be safe for
// concurrent use and should share decoded audio between calls (the samples are never
// modified).
type AudioLoader interface {
	LoadAudio(ctx context.Context, rawURL string) ([]int16, error)
}

// audioCache is the default AudioLoader: file:// and http(s):// WAV files, decoded once and
// shared by every call for DefaultAudioCacheTTL, concurrent loads of one URL coalesced.
type audioCache struct {
	client   *http.Client
	maxBytes int64
	ttl      time.Duration

	mu      sync.Mutex
	entries map[string]*audioEntry
	bytes   int64
}

type audioEntry struct {
	ready   chan struct{}
	samples []int16
	err     error
	loaded  time.Time
}

func newAudioCache(timeout time.Duration) *audioCache {
	return &audioCache{
		client:   &http.Client{Timeout: timeout},
		maxBytes: DefaultAudioCacheBytes,
		ttl:      DefaultAudioCacheTTL,
		entries:  map[string]*audioEntry{},
	}
}

// LoadAudio implements AudioLoader.
func (c *audioCache) LoadAudio(ctx context.Context, rawURL string) ([]int16, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[rawURL]
	if ok {
		select {
		case <-e.ready:
			if e.err != nil || now.Sub(e.loaded) > c.ttl {
				c.dropLocked(rawURL, e)
				ok = false
			}
		default:
		}
	}
	if !ok {
		e = &audioEntry{ready: make(chan struct{})}
		c.entries[rawURL] = e
		c.mu.Unlock()
		e.samples, e.err = c.load(rawURL)
		e.loaded = time.Now()
		c.mu.Lock()
		if e.err == nil {
			c.bytes += int64(len(e.samples)) * 2
			c.evictLocked(rawURL)
		}
		close(e.ready)
		c.mu.Unlock()
		return e.samples, e.err
	}
	c.mu.Unlock()
	select {
	case <-e.ready:
		return e.samples, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *audioCache) dropLocked(key string, e *audioEntry) {
	if c.entries[key] == e {
		delete(c.entries, key)
		c.bytes -= int64(len(e.samples)) * 2
	}
}

// evictLocked removes the oldest loaded entries (other than keep) until the cache fits.
func (c *audioCache) evictLocked(keep string) {
	for c.bytes > c.maxBytes {
		var oldKey string
		var old *audioEntry
		for k, e := range c.entries {
			if k == keep {
				continue
			}
			select {
			case <-e.ready:
			default:
				continue
			}
			if old == nil || e.loaded.Before(old.loaded) {
				oldKey, old = k, e
			}
		}
		if old == nil {
			return
		}
		c.dropLocked(oldKey, old)
	}
}

func (c *audioCache) load(rawURL string) ([]int16, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("load audio %q: %w", rawURL, err)
	}
	var data []byte
	switch u.Scheme {
	case "file":
		f, err := os.Open(u.Path)
		if err != nil {
			return nil, fmt.Errorf("load audio: %w", err)
		}
		data, err = io.ReadAll(io.LimitReader(f, maxAudioFile+1))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("load audio %s: %w", u.Path, err)
		}
	case "http", "https":
		res, err := c.client.Get(rawURL)
		if err != nil {
			return nil, fmt.Errorf("load audio: %w", err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("load audio %s: http status %d", rawURL, res.StatusCode)
		}
		data, err = io.ReadAll(io.LimitReader(res.Body, maxAudioFile+1))
		if err != nil {
			return nil, fmt.Errorf("load audio %s: %w", rawURL, err)
		}
	default:
		return nil, fmt.Errorf("load audio %q: unsupported scheme", rawURL)
	}
	if len(data) > maxAudioFile {
		return nil, fmt.Errorf("load audio %s: larger than %d bytes", rawURL, maxAudioFile)
	}
	a, err := wav.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load audio %s: %w", rawURL, err)
	}
	s := a.To8kMono()
	if len(s) == 0 {
		return nil, fmt.Errorf("load audio %s: %w", rawURL, errors.New("no samples"))
	}
	return s, nil
}
