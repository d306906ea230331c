package fetch

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// cacheControl holds the response directives of a Cache-Control header
// (RFC 9111 section 5.2.2) that the fetcher's cache acts on. s-maxage does
// not change freshness (the fetcher computes lifetimes as a private cache);
// it, public and must-revalidate only matter for responses to requests that
// carried Authorization (sharedWithAuth). private responses to requests
// without Authorization may be stored because the fetcher is one user agent.
type cacheControl struct {
	noStore bool
	noCache bool
	// mustRevalidate and proxyRevalidate are the directives of those names: with either, a
	// stale entry is never served (this cache serves as a shared one); only must-revalidate
	// lets a response to an authorized request be shared (RFC 9111 section 3.5).
	mustRevalidate, proxyRevalidate bool
	public                          bool
	private                         bool
	hasSMaxAge                      bool
	// maxAge is the max-age value; valid only when hasMaxAge.
	maxAge    time.Duration
	hasMaxAge bool
}

// maxDeltaSeconds caps delta-seconds values (RFC 9111 section 1.2.2 allows
// caches to treat larger values as 2^31).
const maxDeltaSeconds = 1 << 31

// parseCacheControl parses every Cache-Control field line of h. Unknown
// directives are ignored; a malformed max-age is treated as max-age=0
// (stale), which is the conservative reading of RFC 9111 section 4.2.1.
func parseCacheControl(h http.Header) cacheControl {
	var cc cacheControl
	for _, line := range h.Values("Cache-Control") {
		for line != "" {
			var item string
			item, line = nextDirective(line)
			name, value, _ := strings.Cut(item, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			value = strings.Trim(strings.TrimSpace(value), `"`)
			switch name {
			case "no-store":
				cc.noStore = true
			case "no-cache":
				// The qualified form (no-cache="Set-Cookie") restricts only
				// the named fields; the fetcher treats it like the
				// unqualified form, which is stricter.
				cc.noCache = true
			case "must-revalidate":
				cc.mustRevalidate = true
			case "proxy-revalidate":
				cc.proxyRevalidate = true
			case "public":
				cc.public = true
			case "private":
				cc.private = true
			case "s-maxage":
				cc.hasSMaxAge = true
			case "max-age":
				d, ok := parseDeltaSeconds(value)
				if !ok {
					d = 0
				}
				// Duplicated max-age directives: keep the lowest value,
				// the safe choice among conflicting freshness claims.
				if !cc.hasMaxAge || d < cc.maxAge {
					cc.maxAge = d
				}
				cc.hasMaxAge = true
			}
		}
	}
	return cc
}

// sharedWithAuth reports whether a response to a request that carried
// Authorization may satisfy other requests from a shared cache (RFC 9111
// section 3.5): it must say so with must-revalidate, public or s-maxage,
// and not be private.
func (cc cacheControl) sharedWithAuth() bool {
	return !cc.private && (cc.mustRevalidate || cc.public || cc.hasSMaxAge)
}

// nextDirective splits the first comma-separated directive off s, keeping
// commas inside quoted strings.
func nextDirective(s string) (item, rest string) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQuote = !inQuote
		case '\\':
			if inQuote {
				i++
			}
		case ',':
			if !inQuote {
				return strings.TrimSpace(s[:i]), s[i+1:]
			}
		}
	}
	return strings.TrimSpace(s), ""
}

// parseDeltaSeconds parses a non-negative integer number of seconds
// (RFC 9111 section 1.2.2), saturating at maxDeltaSeconds.
func parseDeltaSeconds(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxDeltaSeconds {
		n = maxDeltaSeconds
	}
	return time.Duration(n) * time.Second, true
}
