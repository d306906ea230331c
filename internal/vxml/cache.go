package vxml

import (
	"hash/maphash"
	"strings"
	"sync"

	"github.com/opengvp/gvp/internal/vxml/srgs"
	"github.com/opengvp/gvp/internal/vxml/xmltree"
)

// DefaultCacheEntries is the default number of parsed documents and
// grammars kept by a Cache.
const DefaultCacheEntries = 1024

var cacheSeed = maphash.MakeSeed()

// Cache shares parsed documents and external grammars between sessions.
// Entries are keyed by final URL and validated by a hash of the fetched
// body, so a changed resource is parsed again; HTTP freshness is the
// Fetcher's job. Safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	max     int
	entries map[string]cacheEntry
}

type cacheEntry struct {
	sum  uint64
	doc  *Document
	gram *srgs.Grammar
}

// NewCache returns a cache holding at most maxEntries parsed resources.
func NewCache(maxEntries int) *Cache {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheEntries
	}
	return &Cache{max: maxEntries, entries: map[string]cacheEntry{}}
}

// Len returns the number of cached entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *Cache) get(key string, sum uint64) (cacheEntry, bool) {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	return e, ok && e.sum == sum
}

func (c *Cache) put(key string, e cacheEntry) {
	c.mu.Lock()
	if len(c.entries) >= c.max {
		// Evict an arbitrary entry; parsed resources are cheap to rebuild.
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = e
	c.mu.Unlock()
}

func (c *Cache) document(resp *FetchResponse, lim xmltree.Limits) (*Document, error) {
	sum := maphash.Bytes(cacheSeed, resp.Body)
	key := "d " + resp.URL
	if e, ok := c.get(key, sum); ok {
		return e.doc, nil
	}
	doc, err := Parse(resp.Body, resp.URL, lim)
	if err != nil {
		return nil, err
	}
	c.put(key, cacheEntry{sum: sum, doc: doc})
	return doc, nil
}

func (c *Cache) grammar(resp *FetchResponse, typ string, mode srgs.Mode) (*srgs.Grammar, error) {
	sum := maphash.Bytes(cacheSeed, resp.Body)
	key := "g " + string(mode) + " " + resp.URL
	if e, ok := c.get(key, sum); ok {
		return e.gram, nil
	}
	if typ == "" {
		typ = resp.ContentType
	}
	var (
		g   *srgs.Grammar
		err error
	)
	switch {
	case strings.Contains(typ, "srgs+xml") || strings.Contains(typ, "xml"):
		g, err = srgs.ParseXML(resp.Body, mode)
	case strings.Contains(typ, "srgs") || strings.Contains(typ, "abnf"):
		g, err = srgs.ParseABNF(string(resp.Body), mode)
	default:
		// Sniff: XML grammars start with '<'.
		if t := strings.TrimSpace(string(resp.Body)); strings.HasPrefix(t, "<") {
			g, err = srgs.ParseXML(resp.Body, mode)
		} else {
			g, err = srgs.ParseABNF(t, mode)
		}
	}
	if err != nil {
		return nil, err
	}
	c.put(key, cacheEntry{sum: sum, gram: g})
	return g, nil
}
