package fetch

import (
	"container/list"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxHeuristicFreshness caps heuristic freshness lifetimes (when enabled
// with Config.HeuristicFraction): one day, the customary bound.
const maxHeuristicFreshness = 24 * time.Hour

// entryOverhead is the bytes charged per cache entry on top of its body,
// key and header sizes (structs, list element, map slot).
const entryOverhead = 512

// entry is one stored response. Entries are immutable once stored; an
// update (304) stores a new entry under the same key.
type entry struct {
	key         string
	status      int
	header      http.Header
	body        []byte
	contentType string
	location    string // redirect target, raw

	etag, lastModified string
	cc                 cacheControl
	// vary holds, for each field named by Vary, the value the request
	// carried (canonical header names).
	vary map[string]string

	// Freshness model (RFC 9111 section 4.2).
	lifetime            time.Duration
	explicit            bool // lifetime from max-age or Expires
	correctedInitialAge time.Duration
	responseTime        time.Time // when the response (or last 304) arrived
	size                int64
}

// currentAge is RFC 9111 section 4.2.3's current_age at now.
func (e *entry) currentAge(now time.Time) time.Duration {
	return e.correctedInitialAge + now.Sub(e.responseTime)
}

// hasValidator reports whether a conditional request can revalidate e.
func (e *entry) hasValidator() bool { return e.etag != "" || e.lastModified != "" }

// freshness computes the freshness lifetime and corrected initial age of a
// response received at responseTime for a request sent at requestTime.
// explicit is false when the lifetime is heuristic or absent.
func freshness(h http.Header, cc cacheControl, status int, requestTime, responseTime time.Time, heuristic float64) (lifetime, initialAge time.Duration, explicit bool) {
	date := responseTime
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		date = d
	}
	var ageValue time.Duration
	if a, ok := parseDeltaSeconds(strings.TrimSpace(h.Get("Age"))); ok {
		ageValue = a
	}
	apparent := max(responseTime.Sub(date), 0)
	delay := max(responseTime.Sub(requestTime), 0)
	initialAge = max(apparent, ageValue+delay)

	switch {
	case cc.hasMaxAge:
		return cc.maxAge, initialAge, true
	case h.Get("Expires") != "":
		exp, err := http.ParseTime(h.Get("Expires"))
		if err != nil {
			// An invalid Expires (often "0" or "-1") means already expired.
			return 0, initialAge, true
		}
		return max(exp.Sub(date), 0), initialAge, true
	}
	if heuristic > 0 && heuristicallyCacheable(status) {
		if lm, err := http.ParseTime(h.Get("Last-Modified")); err == nil && date.After(lm) {
			l := time.Duration(float64(date.Sub(lm)) * heuristic)
			return min(l, maxHeuristicFreshness), initialAge, false
		}
	}
	return 0, initialAge, false
}

// heuristicallyCacheable lists the status codes RFC 9110 section 15.1
// defines as cacheable by default.
func heuristicallyCacheable(status int) bool {
	switch status {
	case 200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// parseVary returns the canonical field names of the Vary header and
// whether it contains "*".
func parseVary(h http.Header) (names []string, star bool) {
	for _, line := range h.Values("Vary") {
		for _, f := range strings.Split(line, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if f == "*" {
				return nil, true
			}
			names = append(names, http.CanonicalHeaderKey(f))
		}
	}
	return names, false
}

// headerSize estimates the bytes held by h.
func headerSize(h http.Header) int64 {
	var n int64
	for k, vs := range h {
		n += int64(len(k)) + 16
		for _, v := range vs {
			n += int64(len(v)) + 16
		}
	}
	return n
}

// cache is a byte-bounded LRU map of entries, safe for concurrent use.
type cache struct {
	mu       sync.Mutex
	maxBytes int64
	bytes    int64
	ll       list.List // front: most recently used; values: *entry
	items    map[string]*list.Element
	onChange func(bytes int64, entries int)
}

func newCache(maxBytes int64) *cache {
	return &cache{maxBytes: maxBytes, items: make(map[string]*list.Element)}
}

// get returns the entry for key, or nil, and marks it recently used.
func (c *cache) get(key string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil
	}
	c.ll.MoveToFront(el)
	return el.Value.(*entry)
}

// put stores e, replacing any entry with its key, and evicts least
// recently used entries until the cache fits in maxBytes. An entry larger
// than maxBytes is not stored (and removes the old one).
func (c *cache) put(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[e.key]; ok {
		c.removeElement(el)
	}
	if e.size > c.maxBytes {
		c.changed()
		return
	}
	c.items[e.key] = c.ll.PushFront(e)
	c.bytes += e.size
	for c.bytes > c.maxBytes {
		c.removeElement(c.ll.Back())
	}
	c.changed()
}

// remove deletes the entry for key, if any.
func (c *cache) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.removeElement(el)
		c.changed()
	}
}

func (c *cache) removeElement(el *list.Element) {
	e := c.ll.Remove(el).(*entry)
	delete(c.items, e.key)
	c.bytes -= e.size
}

func (c *cache) changed() {
	if c.onChange != nil {
		c.onChange(c.bytes, len(c.items))
	}
}

// stats returns the bytes and entries held.
func (c *cache) stats() (bytes int64, entries int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, len(c.items)
}

// ageString formats d as delta-seconds for request Cache-Control.
func ageString(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10)
}
