// Package fetch is the mcp's HTTP(S) and file fetcher for VoiceXML
// documents, scripts, grammars, data and audio. It implements
// vxml.Fetcher, shares one byte-bounded response cache (RFC 9111) between
// every call of the process, coalesces concurrent misses for one URL into
// one origin request, enforces an allow/deny policy on every target before
// connecting, and bounds response sizes and fetch times.
package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/vxml"
)

// Errors wrapped by the *vxml.FetchError values the Fetcher returns.
var (
	// ErrTimeout: the fetch did not finish within its timeout (the
	// error also wraps context.DeadlineExceeded).
	ErrTimeout = errors.New("fetch timed out")
	// ErrTooLarge: the response body exceeds Config.MaxResponseBytes.
	ErrTooLarge = errors.New("response too large")
	// ErrTooManyRedirects: more than Config.MaxRedirects redirects.
	ErrTooManyRedirects = errors.New("too many redirects")
)

// maxFlightWaits is how many concurrent fetches of a URL a caller waits
// for (when their responses turn out not to be shareable) before it goes
// to the origin on its own.
const maxFlightWaits = 2

// Accept headers by fetch kind.
var acceptByKind = map[vxml.FetchKind]string{
	vxml.FetchDocument: "application/voicexml+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5",
	vxml.FetchScript:   "application/ecmascript, application/javascript, text/javascript, */*;q=0.5",
	vxml.FetchGrammar:  "application/srgs+xml, application/srgs, application/xml;q=0.9, text/plain;q=0.5, */*;q=0.3",
	vxml.FetchData:     "application/xml, text/xml, application/json;q=0.9, */*;q=0.5",
	vxml.FetchAudio:    "audio/wav, audio/x-wav, audio/basic, audio/*;q=0.9, */*;q=0.5",
}

// defaultAccept is used for kinds not listed in acceptByKind.
const defaultAccept = "*/*"

func acceptFor(k vxml.FetchKind) string {
	if a, ok := acceptByKind[k]; ok {
		return a
	}
	return defaultAccept
}

// Option configures a Fetcher's dependencies.
type Option func(*options)

type options struct {
	log zerolog.Logger
	reg prometheus.Registerer
	now func() time.Time
}

// WithLogger sets the logger (default zerolog.Nop()). The fetcher logs
// one debug line per origin request.
func WithLogger(l zerolog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the fetcher's metrics (default: none).
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// WithClock sets the clock used for cache ages (default time.Now). Tests
// inject a manual clock to expire entries without sleeping.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Fetcher fetches resources over HTTP(S) and from files. It is safe for
// concurrent use; one Fetcher serves every call of a process.
type Fetcher struct {
	cfg   Config
	log   zerolog.Logger
	now   func() time.Time
	pol   *policy
	creds atomic.Pointer[[]credential]
	tr    *http.Transport
	cache *cache // nil when caching is off
	roots []string
	m     *metrics

	flightsMu sync.Mutex
	flights   map[string]*flight
}

// flight is an origin request in progress for a cache key. e is set,
// before done closes, to the entry the leader stored in the cache.
type flight struct {
	done    chan struct{}
	e       *entry
	waiters atomic.Int32 // callers waiting on done (observability, tests)
}

// New validates cfg and returns a Fetcher.
func New(cfg Config, opts ...Option) (*Fetcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{log: zerolog.Nop(), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	pol, _ := compilePolicy(cfg.Policy, cfg.AllowFile)
	creds, _ := compileCredentials(cfg.Credentials)
	m, err := newMetrics(o.reg)
	if err != nil {
		return nil, err
	}
	f := &Fetcher{
		cfg:     cfg,
		log:     o.log,
		now:     o.now,
		pol:     pol,
		m:       m,
		flights: make(map[string]*flight),
	}
	f.creds.Store(&creds)
	for _, r := range cfg.FileRoots {
		if real, err := evalRoot(r); err == nil {
			f.roots = append(f.roots, real)
		} else {
			return nil, fmt.Errorf("fetch: file root %s: %w", r, err)
		}
	}
	if cfg.CacheBytes > 0 {
		f.cache = newCache(cfg.CacheBytes)
		f.cache.onChange = func(b int64, n int) {
			m.cacheBytes.Set(float64(b))
			m.cacheEntries.Set(float64(n))
		}
	}
	f.tr = &http.Transport{
		Proxy:                  nil, // targets are checked by address: no proxies
		DialContext:            f.dialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           cfg.MaxIdleConns,
		MaxIdleConnsPerHost:    cfg.MaxIdleConnsPerHost,
		MaxConnsPerHost:        cfg.MaxConnsPerHost,
		IdleConnTimeout:        cfg.IdleConnTimeout,
		TLSHandshakeTimeout:    cfg.TLSHandshakeTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
	}
	if cfg.TLSConfig != nil {
		f.tr.TLSClientConfig = cfg.TLSConfig.Clone()
	}
	return f, nil
}

// Close closes idle connections. In-flight fetches are not interrupted.
func (f *Fetcher) Close() { f.tr.CloseIdleConnections() }

// SetCredentials replaces the Basic credentials (for example after an IVR
// profile changed). Fetches already running keep the old set.
func (f *Fetcher) SetCredentials(cs []Credential) error {
	c, err := compileCredentials(cs)
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	f.creds.Store(&c)
	return nil
}

// CacheStats returns the bytes and entries held by the cache.
func (f *Fetcher) CacheStats() (bytes int64, entries int) {
	if f.cache == nil {
		return 0, 0
	}
	return f.cache.stats()
}

// dialContext connects after checking every address against the policy.
// The check runs in the dialer's Control hook, on the address actually
// being connected to, so DNS answers cannot bypass it.
func (f *Fetcher) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	d := net.Dialer{
		Timeout:   f.cfg.DialTimeout,
		KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			h, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			a, err := netip.ParseAddr(h)
			if err != nil {
				return fmt.Errorf("%w: cannot parse address %q", ErrDenied, h)
			}
			return f.pol.checkAddr(host, a)
		},
	}
	return d.DialContext(ctx, network, addr)
}

// Resource is a fetched resource. Body is shared with the cache and other
// callers: treat it as read-only.
type Resource struct {
	Body        []byte
	ContentType string
	// URL is the final URL after redirects.
	URL string
	// Status is the HTTP status (200 for files).
	Status int
	// Outcome says how it was served.
	Outcome Outcome
}

// GetOption tunes one Get.
type GetOption func(*request)

// WithKind sets the resource kind (Accept header). Default FetchAudio.
func WithKind(k vxml.FetchKind) GetOption { return func(r *request) { r.kind = k } }

// WithTimeout bounds the fetch. Default: the context's deadline, else
// Config.Timeout.
func WithTimeout(d time.Duration) GetOption { return func(r *request) { r.timeout = d } }

// WithMaxAge sets VoiceXML's maxage: the oldest cached response accepted
// without revalidation. Default: unset.
func WithMaxAge(d time.Duration) GetOption { return func(r *request) { r.maxAge = d } }

// WithMaxStale sets VoiceXML's maxstale: how long past its freshness
// lifetime a cached response is still accepted. Default: unset.
func WithMaxStale(d time.Duration) GetOption { return func(r *request) { r.maxStale = d } }

// request is one fetch as the internals see it.
type request struct {
	url              string // requested URL, GET query included
	method           string
	kind             vxml.FetchKind
	body             []byte
	bodyType         string
	timeout          time.Duration
	maxAge, maxStale time.Duration // negative: unset
}

// Get fetches rawURL with GET (audio prompts, grammars). Errors are
// *vxml.FetchError values.
func (f *Fetcher) Get(ctx context.Context, rawURL string, opts ...GetOption) (*Resource, error) {
	r := request{url: rawURL, method: http.MethodGet, kind: vxml.FetchAudio, maxAge: -1, maxStale: -1}
	for _, o := range opts {
		o(&r)
	}
	res, err := f.do(ctx, &r)
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// Fetch implements vxml.Fetcher. GET values are appended to the query;
// POST values form the body per req.Enctype. Errors are *vxml.FetchError:
// StatusCode set for HTTP statuses >= 400, otherwise Err wraps the cause
// (ErrTimeout and context.DeadlineExceeded on timeouts, ErrDenied,
// ErrTooLarge, ErrTooManyRedirects, network errors).
func (f *Fetcher) Fetch(ctx context.Context, req *vxml.FetchRequest) (*vxml.FetchResponse, error) {
	r := request{
		url:      req.URL,
		method:   strings.ToUpper(req.Method),
		kind:     req.Kind,
		timeout:  req.Timeout,
		maxAge:   req.MaxAge,
		maxStale: req.MaxStale,
	}
	switch r.method {
	case "", http.MethodGet:
		r.method = http.MethodGet
		if len(req.Values) > 0 {
			r.url = withQuery(r.url, encodeQuery(req.Values))
		}
	case http.MethodPost:
		body, ct, err := encodeBody(req.Enctype, req.Values)
		if err != nil {
			f.m.requests[OutcomeError].Inc()
			return nil, &vxml.FetchError{URL: req.URL, Err: err}
		}
		r.body, r.bodyType = body, ct
	default:
		f.m.requests[OutcomeError].Inc()
		return nil, &vxml.FetchError{URL: req.URL, Err: fmt.Errorf("unsupported method %q", req.Method)}
	}
	res, err := f.do(ctx, &r)
	if err != nil {
		return nil, err
	}
	return &vxml.FetchResponse{Body: res.Body, ContentType: res.ContentType, URL: res.URL}, nil
}

// cacheKey is the URL without its fragment.
func cacheKey(raw string) string {
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		return raw[:i]
	}
	return raw
}

// do runs one fetch and records its metrics.
func (f *Fetcher) do(ctx context.Context, r *request) (Resource, error) {
	began := time.Now()
	if r.method == http.MethodGet && f.cache != nil {
		if res, err, ok := f.fastHit(ctx, r); ok {
			f.record(began, res.Outcome, len(res.Body), err)
			return res, err
		}
	}
	timeout := r.timeout
	if timeout <= 0 {
		if _, ok := ctx.Deadline(); !ok {
			timeout = f.cfg.Timeout
		}
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	res, err := f.chain(ctx, r)
	if err != nil {
		err = f.wrapError(ctx, r, timeout, err)
	}
	f.record(began, res.Outcome, len(res.Body), err)
	return res, err
}

func (f *Fetcher) record(began time.Time, o Outcome, n int, err error) {
	if err != nil {
		var fe *vxml.FetchError
		if !errors.As(err, &fe) || fe.StatusCode == 0 || o != OutcomeHit {
			o = OutcomeError
		}
	}
	f.m.requests[o].Inc()
	f.m.duration[o].Observe(time.Since(began).Seconds())
	if err == nil {
		f.m.servedBytes.Add(float64(n))
	}
}

// wrapError turns err into a *vxml.FetchError (keeping one that already
// is), marking deadline expiry as ErrTimeout.
func (f *Fetcher) wrapError(ctx context.Context, r *request, timeout time.Duration, err error) error {
	var fe *vxml.FetchError
	if errors.As(err, &fe) && fe.StatusCode != 0 {
		return fe
	}
	u := r.url
	if fe != nil {
		u, err = fe.URL, fe.Err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if timeout > 0 {
			return &vxml.FetchError{URL: u, Err: fmt.Errorf("%w after %s: %w", ErrTimeout, timeout, context.DeadlineExceeded)}
		}
		return &vxml.FetchError{URL: u, Err: fmt.Errorf("%w: %w", ErrTimeout, context.DeadlineExceeded)}
	}
	return &vxml.FetchError{URL: u, Err: err}
}

// fastHit serves a fresh cached response for the requested URL without
// parsing it, taking no lock but the cache's. ok is false when the full
// path must run.
func (f *Fetcher) fastHit(ctx context.Context, r *request) (res Resource, err error, ok bool) {
	key := cacheKey(r.url)
	e := f.cache.get(key)
	if e == nil || isRedirect(e.status) || !f.varyMatches(ctx, e, r, nil) || !usable(e, r, f.now()) {
		return Resource{}, nil, false
	}
	res = Resource{Body: e.body, ContentType: e.contentType, URL: key, Status: e.status, Outcome: OutcomeHit}
	if e.status >= 300 {
		return res, &vxml.FetchError{URL: key, StatusCode: e.status}, true
	}
	return res, nil, true
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// usable reports whether e may be used for r at now without contacting
// the origin (RFC 9111 section 4.2 plus the request's maxage/maxstale).
func usable(e *entry, r *request, now time.Time) bool {
	if e.cc.noCache {
		return false
	}
	age := e.currentAge(now)
	if r.maxAge >= 0 && age > r.maxAge {
		return false
	}
	if e.lifetime > age {
		return true
	}
	if e.cc.mustRevalidate || e.cc.proxyRevalidate {
		return false
	}
	return r.maxStale >= 0 && age-e.lifetime <= r.maxStale
}

// chain follows redirects from r.url, fetching each hop through the cache
// (GET) or from the origin (POST).
func (f *Fetcher) chain(ctx context.Context, r *request) (Resource, error) {
	raw, method, body, bodyType := r.url, r.method, r.body, r.bodyType
	worst := OutcomeHit
	for hops := 0; ; hops++ {
		u, err := url.Parse(raw)
		if err != nil {
			return Resource{}, &vxml.FetchError{URL: raw, Err: fmt.Errorf("invalid URL: %w", err)}
		}
		key := cacheKey(raw)
		u.Fragment, u.RawFragment = "", ""
		if !u.IsAbs() {
			return Resource{}, &vxml.FetchError{URL: raw, Err: errors.New("URL is not absolute")}
		}
		if err := f.pol.checkURL(u); err != nil {
			return Resource{}, &vxml.FetchError{URL: key, Err: err}
		}
		if strings.EqualFold(u.Scheme, "file") {
			if hops > 0 {
				return Resource{}, &vxml.FetchError{URL: key, Err: fmt.Errorf("%w: redirect to a file URL", ErrDenied)}
			}
			return f.readFile(u, key)
		}
		var (
			e  *entry
			oc Outcome
		)
		if method == http.MethodGet {
			e, oc, err = f.cachedGet(ctx, key, u, r)
		} else {
			var rr *rawResponse
			rr, err = f.send(ctx, method, u, body, bodyType, r, nil)
			if err == nil {
				e, oc = f.makeEntry(key, rr), OutcomeMiss
				if f.cache != nil && rr.status < 400 {
					// RFC 9111 section 4.4: an unsafe method invalidates.
					f.cache.remove(key)
				}
			}
		}
		if err != nil {
			return Resource{}, &vxml.FetchError{URL: key, Err: err}
		}
		worst = max(worst, oc)
		if isRedirect(e.status) && e.location != "" {
			if hops >= f.cfg.MaxRedirects {
				return Resource{}, &vxml.FetchError{URL: key, Err: fmt.Errorf("%w: more than %d", ErrTooManyRedirects, f.cfg.MaxRedirects)}
			}
			next, err := u.Parse(e.location)
			if err != nil {
				return Resource{}, &vxml.FetchError{URL: key, Err: fmt.Errorf("invalid redirect location %q: %w", e.location, err)}
			}
			if e.status == http.StatusSeeOther || (method == http.MethodPost && e.status <= http.StatusFound) {
				method, body, bodyType = http.MethodGet, nil, ""
			}
			raw = next.String()
			continue
		}
		res := Resource{Body: e.body, ContentType: e.contentType, URL: key, Status: e.status, Outcome: worst}
		if e.status < 200 || e.status >= 300 {
			return res, &vxml.FetchError{URL: key, StatusCode: e.status}
		}
		return res, nil
	}
}

// cachedGet returns the response for a GET of u: a usable cached entry, the
// entry stored by a concurrent fetch of the same key, or a new response
// from the origin (conditional when a stale entry has a validator).
func (f *Fetcher) cachedGet(ctx context.Context, key string, u *url.URL, r *request) (*entry, Outcome, error) {
	if f.cache == nil {
		rr, err := f.send(ctx, http.MethodGet, u, nil, "", r, nil)
		if err != nil {
			return nil, OutcomeError, err
		}
		return f.makeEntry(key, rr), OutcomeMiss, nil
	}
	for waits := 0; ; waits++ {
		e := f.cache.get(key)
		if e != nil && !f.varyMatches(ctx, e, r, u) {
			e = nil
		}
		if e != nil && usable(e, r, f.now()) {
			return e, OutcomeHit, nil
		}
		f.flightsMu.Lock()
		fl := f.flights[key]
		if fl != nil && waits < maxFlightWaits {
			fl.waiters.Add(1)
			f.flightsMu.Unlock()
			select {
			case <-fl.done:
				fl.waiters.Add(-1)
			case <-ctx.Done():
				fl.waiters.Add(-1)
				return nil, OutcomeError, ctx.Err()
			}
			// The leader's response was validated for this request too.
			if fl.e != nil && f.varyMatches(ctx, fl.e, r, u) {
				return fl.e, OutcomeCoalesced, nil
			}
			continue
		}
		lead := fl == nil
		if lead {
			fl = &flight{done: make(chan struct{})}
			f.flights[key] = fl
		}
		f.flightsMu.Unlock()
		ne, stored, oc, err := f.originGet(ctx, key, u, r, e)
		if lead {
			if stored {
				fl.e = ne
			}
			f.flightsMu.Lock()
			delete(f.flights, key)
			f.flightsMu.Unlock()
			close(fl.done)
		}
		return ne, oc, err
	}
}

// originGet sends a GET (conditional when old has a validator), updates the
// cache and returns the entry to use and whether it was stored.
func (f *Fetcher) originGet(ctx context.Context, key string, u *url.URL, r *request, old *entry) (*entry, bool, Outcome, error) {
	if old != nil && !old.hasValidator() {
		old = nil
	}
	rr, err := f.send(ctx, http.MethodGet, u, nil, "", r, old)
	if err != nil {
		return nil, false, OutcomeError, err
	}
	if rr.status == http.StatusNotModified && old != nil {
		ne := f.refresh(old, rr)
		if f.storable(ne, rr.header, rr.authorized) {
			f.cache.put(ne)
			return ne, true, OutcomeRevalidated, nil
		}
		f.cache.remove(key)
		return ne, false, OutcomeRevalidated, nil
	}
	ne := f.makeEntry(key, rr)
	if f.storable(ne, rr.header, rr.authorized) {
		f.cache.put(ne)
		return ne, true, OutcomeMiss, nil
	}
	if old != nil || f.cache.get(key) != nil {
		f.cache.remove(key)
	}
	return ne, false, OutcomeMiss, nil
}

// rawResponse is an origin response with its body read.
type rawResponse struct {
	status      int
	header      http.Header
	body        []byte
	vary        map[string]string
	requestTime time.Time
	respTime    time.Time
	// authorized: the request carried Authorization (RFC 9111 section 3.5).
	authorized bool
}

// send performs one HTTP exchange (no redirect following).
func (f *Fetcher) send(ctx context.Context, method string, u *url.URL, body []byte, bodyType string, r *request, cond *entry) (*rawResponse, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	h := hreq.Header
	h.Set("User-Agent", f.cfg.UserAgent)
	h.Set("Accept", acceptFor(r.kind))
	if bodyType != "" {
		h.Set("Content-Type", bodyType)
	}
	auth := f.authorization(ctx, u)
	if auth != "" {
		h.Set("Authorization", auth)
	}
	if jar := jarFrom(ctx); jar != nil {
		for _, c := range jar.Cookies(u) {
			hreq.AddCookie(c)
		}
	}
	if method == http.MethodGet {
		var cc []string
		if r.maxAge >= 0 {
			cc = append(cc, "max-age="+ageString(r.maxAge))
		}
		if r.maxStale >= 0 {
			cc = append(cc, "max-stale="+ageString(r.maxStale))
		}
		if len(cc) > 0 {
			h.Set("Cache-Control", strings.Join(cc, ", "))
		}
	}
	if cond != nil {
		if cond.etag != "" {
			h.Set("If-None-Match", cond.etag)
		}
		if cond.lastModified != "" {
			h.Set("If-Modified-Since", cond.lastModified)
		}
	}
	reqTime := f.now()
	start := time.Now()
	resp, err := f.tr.RoundTrip(hreq)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u.Redacted(), err)
	}
	defer resp.Body.Close()
	limit := f.cfg.MaxResponseBytes
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: Content-Length %d, limit %d", ErrTooLarge, resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read body of %s: %w", u.Redacted(), err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	if jar := jarFrom(ctx); jar != nil {
		if cs := resp.Cookies(); len(cs) > 0 {
			jar.SetCookies(u, cs)
		}
	}
	f.m.originBytes.Add(float64(len(data)))
	rr := &rawResponse{status: resp.StatusCode, header: resp.Header, body: data, requestTime: reqTime, respTime: f.now(), authorized: auth != ""}
	if names, _ := parseVary(resp.Header); len(names) > 0 {
		rr.vary = make(map[string]string, len(names))
		for _, n := range names {
			rr.vary[n] = h.Get(n)
		}
	}
	f.log.Debug().Str("method", method).Str("url", u.Redacted()).Int("status", resp.StatusCode).
		Int("bytes", len(data)).Bool("conditional", cond != nil).Dur("took", time.Since(start)).Msg("fetched")
	return rr, nil
}

// authorization returns the Authorization value for u: its own user
// information, else the longest matching credential of the context
// (CallCredentials.Context), else the longest matching configured credential.
func (f *Fetcher) authorization(ctx context.Context, u *url.URL) string {
	if u.User != nil {
		p, _ := u.User.Password()
		req := http.Request{Header: http.Header{}}
		req.SetBasicAuth(u.User.Username(), p)
		return req.Header.Get("Authorization")
	}
	if cs := credsFrom(ctx); cs != nil {
		if a := matchCredential(cs, u); a != "" {
			return a
		}
	}
	return matchCredential(*f.creds.Load(), u)
}

// varyMatches reports whether the request headers the fetcher would send
// for r equal those recorded by e's Vary header. u may be nil (parsed on
// demand).
func (f *Fetcher) varyMatches(ctx context.Context, e *entry, r *request, u *url.URL) bool {
	for name, want := range e.vary {
		var got string
		switch name {
		case "Accept":
			got = acceptFor(r.kind)
		case "User-Agent":
			got = f.cfg.UserAgent
		case "Authorization", "Cookie":
			if u == nil {
				var err error
				if u, err = url.Parse(cacheKey(r.url)); err != nil {
					return false
				}
			}
			if name == "Authorization" {
				got = f.authorization(ctx, u)
			} else if jar := jarFrom(ctx); jar != nil {
				hr := http.Request{Header: http.Header{}}
				for _, c := range jar.Cookies(u) {
					hr.AddCookie(c)
				}
				got = hr.Header.Get("Cookie")
			}
		case "Cache-Control":
			// Request directives vary per fetch; never reuse.
			return false
		}
		if got != want {
			return false
		}
	}
	return true
}

// makeEntry builds a cache entry from an origin response.
func (f *Fetcher) makeEntry(key string, rr *rawResponse) *entry {
	cc := parseCacheControl(rr.header)
	e := &entry{
		key:          key,
		status:       rr.status,
		header:       rr.header,
		body:         rr.body,
		contentType:  rr.header.Get("Content-Type"),
		location:     rr.header.Get("Location"),
		etag:         rr.header.Get("ETag"),
		lastModified: rr.header.Get("Last-Modified"),
		cc:           cc,
		vary:         rr.vary,
		responseTime: rr.respTime,
	}
	e.lifetime, e.correctedInitialAge, e.explicit = freshness(rr.header, cc, rr.status, rr.requestTime, rr.respTime, f.cfg.HeuristicFraction)
	e.size = int64(len(e.body)+len(key)) + headerSize(e.header) + entryOverhead
	return e
}

// refresh returns a copy of old updated by a 304 response (RFC 9111
// section 4.3.4): stored header fields are replaced by those in the 304,
// except the ones describing the body.
func (f *Fetcher) refresh(old *entry, rr *rawResponse) *entry {
	h := old.header.Clone()
	for k, vs := range rr.header {
		switch k {
		case "Content-Length", "Content-Encoding", "Content-Range", "Transfer-Encoding":
			continue
		}
		h[k] = vs
	}
	nr := *rr
	nr.header, nr.body, nr.status = h, old.body, old.status
	if nr.vary == nil {
		nr.vary = old.vary
	}
	return f.makeEntry(old.key, &nr)
}

// storable applies RFC 9111 section 3 to a GET response: no no-store, no
// Set-Cookie (a response that sets cookies belongs to one call), no
// "Vary: *", a status the cache understands, a body within
// MaxEntryBytes, and either a freshness lifetime or a validator (a 200
// without freshness is stored to be revalidated on every use). The cache
// is shared by every call, so a response to a request that carried
// Authorization (authorized) is stored only when it allows a shared cache
// to serve it to others (RFC 9111 section 3.5: must-revalidate, public or
// s-maxage); otherwise it is used by its own request alone.
func (f *Fetcher) storable(e *entry, h http.Header, authorized bool) bool {
	if f.cache == nil || e.cc.noStore || len(h.Values("Set-Cookie")) > 0 || int64(len(e.body)) > f.cfg.MaxEntryBytes {
		return false
	}
	if authorized && !e.cc.sharedWithAuth() {
		return false
	}
	if _, star := parseVary(h); star {
		return false
	}
	switch {
	case e.explicit:
		return heuristicallyCacheable(e.status) || e.status == http.StatusFound || e.status == http.StatusTemporaryRedirect
	case e.lifetime > 0:
		return heuristicallyCacheable(e.status)
	}
	return e.status == http.StatusOK && e.hasValidator()
}

// cookieJarKey is the context key of a per-call cookie jar.
type cookieJarKey struct{}

// WithCookieJar returns a context whose fetches send and store cookies in
// jar (one jar per call keeps application server sessions apart).
// Responses that set cookies are never stored in the shared cache.
func WithCookieJar(ctx context.Context, jar http.CookieJar) context.Context {
	return context.WithValue(ctx, cookieJarKey{}, jar)
}

func jarFrom(ctx context.Context) http.CookieJar {
	j, _ := ctx.Value(cookieJarKey{}).(http.CookieJar)
	return j
}

// credentialsKey is the context key of a call's credentials.
type credentialsKey struct{}

// CallCredentials are one call's HTTP Basic credentials (from its IVR profile), checked and
// prepared once (CompileCredentials), to be put on the context of each of its fetches
// (Context). Fetches with that context send them to the URLs under their prefixes, ahead of the
// Fetcher's configured credentials; user information in a URL still wins.
//
// The shared cache keeps responses fetched with credentials apart from other calls (RFC 9111
// section 3.5): such a response is served to no other request unless it says Cache-Control
// public, s-maxage or must-revalidate.
type CallCredentials struct{ c []credential }

// CompileCredentials checks cs (the prefix rules of Config.Credentials) and prepares them; nil
// for none.
func CompileCredentials(cs []Credential) (*CallCredentials, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	c, err := compileCredentials(cs)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	return &CallCredentials{c: c}, nil
}

// Context returns ctx whose fetches send the credentials; ctx itself when cc is nil.
func (cc *CallCredentials) Context(ctx context.Context) context.Context {
	if cc == nil {
		return ctx
	}
	return context.WithValue(ctx, credentialsKey{}, cc.c)
}

func credsFrom(ctx context.Context) []credential {
	c, _ := ctx.Value(credentialsKey{}).([]credential)
	return c
}
