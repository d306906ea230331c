package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/opengvp/gvp/internal/vxml"
)

// manualClock is a clock that moves only when told to.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *manualClock {
	return &manualClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newOriginServer(h http.HandlerFunc) *httptest.Server { return httptest.NewServer(h) }

// origin is a test web server counting requests.
type origin struct {
	*httptest.Server
	clk      *manualClock
	requests atomic.Int32
	mu       sync.Mutex
	last     *http.Request
}

func newOrigin(t *testing.T, clk *manualClock, h func(w http.ResponseWriter, r *http.Request)) *origin {
	t.Helper()
	o := &origin{clk: clk}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.requests.Add(1)
		o.mu.Lock()
		o.last = r.Clone(context.Background())
		o.mu.Unlock()
		if clk != nil {
			w.Header().Set("Date", clk.Now().Format(http.TimeFormat))
		}
		h(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) lastRequest() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last
}

func newFetcher(t testing.TB, clk *manualClock, mut func(*Config), opts ...Option) *Fetcher {
	t.Helper()
	cfg := DefaultConfig()
	if mut != nil {
		mut(&cfg)
	}
	if clk != nil {
		opts = append(opts, WithClock(clk.Now))
	}
	f, err := New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(f.Close)
	return f
}

func mustGet(t *testing.T, f *Fetcher, u string, opts ...GetOption) *Resource {
	t.Helper()
	res, err := f.Get(context.Background(), u, opts...)
	if err != nil {
		t.Fatalf("Get %s: %v", u, err)
	}
	return res
}

func expectOutcome(t *testing.T, f *Fetcher, u string, want Outcome, opts ...GetOption) *Resource {
	t.Helper()
	res := mustGet(t, f, u, opts...)
	if res.Outcome != want {
		t.Fatalf("Get %s: outcome %v, want %v", u, res.Outcome, want)
	}
	return res
}

func TestMaxAgeHitAndExpiry(t *testing.T) {
	clk := newClock()
	n := 0
	o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "application/voicexml+xml")
		fmt.Fprintf(w, "v%d", n)
	})
	f := newFetcher(t, clk, nil)
	u := o.URL + "/doc.vxml"
	if res := expectOutcome(t, f, u, OutcomeMiss); string(res.Body) != "v1" || res.ContentType != "application/voicexml+xml" {
		t.Fatalf("first fetch: %q %q", res.Body, res.ContentType)
	}
	clk.Advance(59 * time.Second)
	if res := expectOutcome(t, f, u+"#frag", OutcomeHit); string(res.Body) != "v1" {
		t.Fatalf("hit body %q", res.Body)
	}
	clk.Advance(2 * time.Second) // age 61 > 60
	if res := expectOutcome(t, f, u, OutcomeMiss); string(res.Body) != "v2" {
		t.Fatalf("after expiry body %q", res.Body)
	}
	if got := o.requests.Load(); got != 2 {
		t.Fatalf("origin requests = %d, want 2", got)
	}
}

func TestExpiresAndAge(t *testing.T) {
	clk := newClock()
	o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		// Lifetime 100 s, already 90 s old at an upstream cache: 10 s left.
		w.Header().Set("Expires", clk.Now().Add(100*time.Second).Format(http.TimeFormat))
		w.Header().Set("Age", "90")
		io.WriteString(w, "x")
	})
	f := newFetcher(t, clk, nil)
	expectOutcome(t, f, o.URL, OutcomeMiss)
	clk.Advance(9 * time.Second)
	expectOutcome(t, f, o.URL, OutcomeHit)
	clk.Advance(2 * time.Second)
	expectOutcome(t, f, o.URL, OutcomeMiss)
}

func TestInvalidExpiresIsStale(t *testing.T) {
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Expires", "0")
		io.WriteString(w, "x")
	})
	f := newFetcher(t, newClock(), nil)
	expectOutcome(t, f, o.URL, OutcomeMiss)
	expectOutcome(t, f, o.URL, OutcomeMiss)
}

func TestRevalidateETag(t *testing.T) {
	clk := newClock()
	var full, notModified atomic.Int32
	o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Cache-Control", "max-age=10")
		if r.Header.Get("If-None-Match") == `"v1"` {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full.Add(1)
		io.WriteString(w, "body-v1")
	})
	f := newFetcher(t, clk, nil)
	expectOutcome(t, f, o.URL, OutcomeMiss)
	clk.Advance(11 * time.Second)
	if res := expectOutcome(t, f, o.URL, OutcomeRevalidated); string(res.Body) != "body-v1" {
		t.Fatalf("revalidated body %q", res.Body)
	}
	// The 304 renewed the freshness lifetime.
	clk.Advance(5 * time.Second)
	expectOutcome(t, f, o.URL, OutcomeHit)
	if full.Load() != 1 || notModified.Load() != 1 {
		t.Fatalf("full=%d notModified=%d, want 1 and 1", full.Load(), notModified.Load())
	}
}

func TestRevalidateLastModified(t *testing.T) {
	clk := newClock()
	lm := clk.Now().Add(-time.Hour).Format(http.TimeFormat)
	version := "a"
	o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		// No freshness information: stored, revalidated on every use.
		w.Header().Set("Last-Modified", lm)
		if r.Header.Get("If-Modified-Since") == lm && version == "a" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		io.WriteString(w, version)
	})
	f := newFetcher(t, clk, nil)
	expectOutcome(t, f, o.URL, OutcomeMiss)
	if res := expectOutcome(t, f, o.URL, OutcomeRevalidated); string(res.Body) != "a" {
		t.Fatalf("body %q", res.Body)
	}
	if got := o.lastRequest().Header.Get("If-Modified-Since"); got != lm {
		t.Fatalf("If-Modified-Since = %q, want %q", got, lm)
	}
	version = "b" // origin now answers 200 with the new body
	if res := expectOutcome(t, f, o.URL, OutcomeMiss); string(res.Body) != "b" {
		t.Fatalf("changed body %q", res.Body)
	}
}

func TestHeuristicFreshness(t *testing.T) {
	clk := newClock()
	o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", clk.Now().Add(-100*time.Second).Format(http.TimeFormat))
		if r.Header.Get("If-Modified-Since") != "" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		io.WriteString(w, "x")
	})
	f := newFetcher(t, clk, func(c *Config) { c.HeuristicFraction = 0.1 }) // 10 s
	expectOutcome(t, f, o.URL, OutcomeMiss)
	clk.Advance(9 * time.Second)
	expectOutcome(t, f, o.URL, OutcomeHit)
	clk.Advance(2 * time.Second)
	expectOutcome(t, f, o.URL, OutcomeRevalidated)
}

func TestNoStoreAndNoCache(t *testing.T) {
	for _, tc := range []struct {
		cc         string
		second     Outcome
		wantStored bool
	}{
		{"no-store", OutcomeMiss, false},
		{"no-store, max-age=600", OutcomeMiss, false},
		{"no-cache", OutcomeRevalidated, true},
		{"max-age=600, no-cache", OutcomeRevalidated, true},
		{"private, max-age=600", OutcomeHit, true},
		{"s-maxage=600", OutcomeRevalidated, true}, // s-maxage ignored: no freshness, has a validator
	} {
		t.Run(tc.cc, func(t *testing.T) {
			o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", tc.cc)
				w.Header().Set("ETag", `"e"`)
				if r.Header.Get("If-None-Match") == `"e"` {
					w.WriteHeader(http.StatusNotModified)
					return
				}
				io.WriteString(w, "x")
			})
			f := newFetcher(t, newClock(), nil)
			expectOutcome(t, f, o.URL, OutcomeMiss)
			if _, n := f.CacheStats(); (n == 1) != tc.wantStored {
				t.Fatalf("entries = %d, stored want %v", n, tc.wantStored)
			}
			if res := expectOutcome(t, f, o.URL, tc.second); string(res.Body) != "x" {
				t.Fatalf("body %q", res.Body)
			}
		})
	}
}

func TestMaxAgeMaxStale(t *testing.T) {
	const unset = -1
	for _, tc := range []struct {
		name     string
		cc       string
		age      time.Duration
		maxAge   time.Duration
		maxStale time.Duration
		want     Outcome
	}{
		{"fresh, no limits", "max-age=60", 30 * time.Second, unset, unset, OutcomeHit},
		{"maxage below age", "max-age=60", 30 * time.Second, 10 * time.Second, unset, OutcomeMiss},
		{"maxage above age", "max-age=60", 30 * time.Second, 40 * time.Second, unset, OutcomeHit},
		{"maxage zero", "max-age=60", time.Second, 0, unset, OutcomeMiss},
		{"stale, no maxstale", "max-age=60", 90 * time.Second, unset, unset, OutcomeMiss},
		{"stale within maxstale", "max-age=60", 90 * time.Second, unset, 60 * time.Second, OutcomeHit},
		{"stale at maxstale", "max-age=60", 90 * time.Second, unset, 30 * time.Second, OutcomeHit},
		{"stale beyond maxstale", "max-age=60", 90 * time.Second, unset, 10 * time.Second, OutcomeMiss},
		{"maxstale but must-revalidate", "max-age=60, must-revalidate", 90 * time.Second, unset, 60 * time.Second, OutcomeMiss},
		{"maxstale but no-cache", "max-age=60, no-cache", 90 * time.Second, unset, 60 * time.Second, OutcomeMiss},
		{"maxstale, maxage limits", "max-age=60", 90 * time.Second, 80 * time.Second, 60 * time.Second, OutcomeMiss},
		{"maxstale and maxage both ok", "max-age=60", 90 * time.Second, 100 * time.Second, 60 * time.Second, OutcomeHit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			o := newOrigin(t, clk, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", tc.cc)
				io.WriteString(w, "x")
			})
			f := newFetcher(t, clk, nil)
			// Through the vxml interface, as the interpreter calls it.
			req := &vxml.FetchRequest{URL: o.URL, Kind: vxml.FetchDocument, Method: "GET", MaxAge: -1, MaxStale: -1}
			if _, err := f.Fetch(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			clk.Advance(tc.age)
			req.MaxAge, req.MaxStale = tc.maxAge, tc.maxStale
			if _, err := f.Fetch(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			got := OutcomeHit
			if o.requests.Load() == 2 {
				got = OutcomeMiss
			}
			if got != tc.want {
				t.Fatalf("outcome %v, want %v", got, tc.want)
			}
			if tc.maxAge >= 0 && got == OutcomeMiss {
				if cc := o.lastRequest().Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
					t.Fatalf("request Cache-Control %q does not forward max-age", cc)
				}
			}
		})
	}
}

func TestCoalescing(t *testing.T) {
	const callers = 20
	release := make(chan struct{})
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "max-age=300")
		io.WriteString(w, "shared")
	})
	reg := prometheus.NewRegistry()
	f := newFetcher(t, newClock(), nil, WithRegisterer(reg))
	var wg sync.WaitGroup
	outcomes := make(chan Outcome, callers)
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := f.Get(context.Background(), o.URL+"/prompt.wav")
			if err != nil {
				errs <- err
				return
			}
			if string(res.Body) != "shared" {
				errs <- fmt.Errorf("body %q", res.Body)
			}
			outcomes <- res.Outcome
		}()
	}
	// Wait until one request reached the origin and every other caller
	// waits on it.
	for {
		f.flightsMu.Lock()
		var waiting int32
		for _, fl := range f.flights {
			waiting = fl.waiters.Load()
		}
		f.flightsMu.Unlock()
		if waiting == callers-1 && o.requests.Load() == 1 {
			break
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	close(outcomes)
	for err := range errs {
		t.Fatal(err)
	}
	counts := map[Outcome]int{}
	for oc := range outcomes {
		counts[oc]++
	}
	if counts[OutcomeMiss] != 1 || counts[OutcomeCoalesced] != callers-1 {
		t.Fatalf("outcomes %v, want 1 miss and %d coalesced", counts, callers-1)
	}
	if got := o.requests.Load(); got != 1 {
		t.Fatalf("origin requests = %d, want 1", got)
	}
	if got := testutil.ToFloat64(f.m.requests[OutcomeCoalesced]); got != callers-1 {
		t.Fatalf("coalesced metric = %v", got)
	}
}

// An uncacheable response is not shared: callers that waited go to the
// origin themselves (each call may get its own session-specific answer).
func TestCoalescingUncacheableNotShared(t *testing.T) {
	release := make(chan struct{})
	var n atomic.Int32
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			<-release
		}
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "private")
	})
	f := newFetcher(t, newClock(), nil)
	done := make(chan *Resource, 2)
	go func() { res, _ := f.Get(context.Background(), o.URL); done <- res }()
	for o.requests.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	go func() { res, _ := f.Get(context.Background(), o.URL); done <- res }()
	for {
		f.flightsMu.Lock()
		fl := f.flights[o.URL]
		f.flightsMu.Unlock()
		if fl != nil && fl.waiters.Load() == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	for range 2 {
		if res := <-done; res == nil || res.Outcome != OutcomeMiss {
			t.Fatalf("result %+v, want a miss", res)
		}
	}
	if got := o.requests.Load(); got != 2 {
		t.Fatalf("origin requests = %d, want 2", got)
	}
}

func TestTimeout(t *testing.T) {
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	f := newFetcher(t, nil, nil)
	_, err := f.Fetch(context.Background(), &vxml.FetchRequest{URL: o.URL, Method: "GET", Timeout: 50 * time.Millisecond, MaxAge: -1, MaxStale: -1})
	var fe *vxml.FetchError
	if !errors.As(err, &fe) || fe.StatusCode != 0 {
		t.Fatalf("err = %v, want *FetchError without status", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want DeadlineExceeded and ErrTimeout", err)
	}
}

func TestHTTPErrorStatus(t *testing.T) {
	for _, code := range []int{404, 500, 403} {
		o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "nope", code)
		})
		f := newFetcher(t, nil, nil)
		_, err := f.Fetch(context.Background(), &vxml.FetchRequest{URL: o.URL + "/missing.vxml", Method: "GET", MaxAge: -1, MaxStale: -1})
		var fe *vxml.FetchError
		if !errors.As(err, &fe) || fe.StatusCode != code {
			t.Fatalf("err = %v, want FetchError %d", err, code)
		}
		if fe.URL != o.URL+"/missing.vxml" {
			t.Fatalf("FetchError.URL = %q", fe.URL)
		}
	}
}

func TestCached404(t *testing.T) {
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		http.NotFound(w, r)
	})
	f := newFetcher(t, newClock(), nil)
	for range 2 {
		_, err := f.Get(context.Background(), o.URL)
		var fe *vxml.FetchError
		if !errors.As(err, &fe) || fe.StatusCode != 404 {
			t.Fatalf("err = %v", err)
		}
	}
	if got := o.requests.Load(); got != 1 {
		t.Fatalf("origin requests = %d, want 1 (404 with max-age is cacheable)", got)
	}
}

func TestRedirects(t *testing.T) {
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/start":
			http.Redirect(w, r, "app/next.vxml?x=1", http.StatusFound)
		case "/app/next.vxml":
			w.Header().Set("Content-Type", "application/voicexml+xml")
			fmt.Fprintf(w, "%s %s", r.Method, r.URL.RawQuery)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/post":
			http.Redirect(w, r, "/app/next.vxml", http.StatusSeeOther)
		case "/keep":
			http.Redirect(w, r, "/echo", http.StatusTemporaryRedirect)
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s", r.Method, b)
		}
	})
	f := newFetcher(t, nil, nil)
	res, err := f.Fetch(context.Background(), &vxml.FetchRequest{URL: o.URL + "/start", Method: "GET", MaxAge: -1, MaxStale: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.URL != o.URL+"/app/next.vxml?x=1" || string(res.Body) != "GET x=1" {
		t.Fatalf("final URL %q body %q", res.URL, res.Body)
	}
	_, err = f.Get(context.Background(), o.URL+"/loop")
	if !errors.Is(err, ErrTooManyRedirects) {
		t.Fatalf("loop: err = %v, want ErrTooManyRedirects", err)
	}
	post := func(path string) string {
		t.Helper()
		res, err := f.Fetch(context.Background(), &vxml.FetchRequest{URL: o.URL + path, Method: "POST",
			Values: []vxml.NameValue{{Name: "a", Value: "1"}}, MaxAge: -1, MaxStale: -1})
		if err != nil {
			t.Fatal(err)
		}
		return string(res.Body)
	}
	if got := post("/post"); got != "GET " {
		t.Fatalf("303 after POST: %q, want a GET", got)
	}
	if got := post("/keep"); got != "POST a=1" {
		t.Fatalf("307 after POST: %q, want the POST repeated", got)
	}
}

func TestPolicy(t *testing.T) {
	// An internal service on 127.0.0.2 that the operator denies.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	var internalHits atomic.Int32
	internal := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		io.WriteString(w, "secret")
	})}}
	internal.Start()
	t.Cleanup(internal.Close)
	app := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-internal":
			http.Redirect(w, r, internal.URL+"/", http.StatusFound)
		case "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		default:
			io.WriteString(w, "ok")
		}
	})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(app.URL, "http://"))
	byName := "http://localhost:" + port + "/"

	for _, tc := range []struct {
		name    string
		policy  Policy
		file    bool
		url     string
		wantErr string // substring; "" = success
	}{
		{"allowed", Policy{Deny: []string{"127.0.0.2/32"}}, false, app.URL + "/", ""},
		{"denied address", Policy{Deny: []string{"127.0.0.2/32"}}, false, internal.URL + "/", "address 127.0.0.2 of 127.0.0.2 is in denied range 127.0.0.2/32"},
		{"redirect into denied address", Policy{Deny: []string{"127.0.0.2/32"}}, false, app.URL + "/to-internal", "denied range 127.0.0.2/32"},
		{"allow list", Policy{Allow: []string{"127.0.0.1/32"}}, false, app.URL + "/", ""},
		{"allow list, redirect outside", Policy{Allow: []string{"127.0.0.1/32"}}, false, app.URL + "/to-internal", "matches no allow rule"},
		{"denied host name", Policy{Deny: []string{"localhost"}}, false, byName, "host localhost matches deny rule localhost"},
		{"wildcard host", Policy{Deny: []string{"*.internal.example"}}, false, "http://db.internal.example/", "matches deny rule *.internal.example"},
		{"name resolving to denied address", Policy{Deny: []string{"127.0.0.1/32", "::1/128"}}, false, byName, "is in denied range"},
		{"name allowed by address", Policy{Allow: []string{"127.0.0.1/32", "::1/128"}}, false, byName, ""},
		{"scheme", Policy{}, false, "ftp://127.0.0.1/x", `scheme "ftp" is not allowed`},
		{"file disabled", Policy{}, false, "file:///etc/hostname", "file URLs are disabled"},
		{"redirect to file", Policy{}, true, app.URL + "/to-file", "redirect to a file URL"},
		{"default deny: metadata address", Policy{}, false, "http://169.254.169.254/latest/meta-data/", "denied range 169.254.0.0/16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFetcher(t, nil, func(c *Config) { c.Policy = tc.policy; c.AllowFile = tc.file })
			res, err := f.Get(context.Background(), tc.url, WithTimeout(5*time.Second))
			if tc.wantErr == "" {
				if err != nil || string(res.Body) != "ok" {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want ErrDenied containing %q", err, tc.wantErr)
			}
		})
	}
	if got := internalHits.Load(); got != 0 {
		t.Fatalf("the denied server was reached %d times", got)
	}
}

func TestPolicyRulesInvalid(t *testing.T) {
	for _, rule := range []string{"a*b.example", "*", "10.0.0.0/33", "host name", ""} {
		cfg := DefaultConfig()
		cfg.Policy.Deny = []string{rule}
		err := cfg.Validate()
		if rule == "*" {
			if err != nil {
				t.Fatalf("rule %q: %v", rule, err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("rule %q accepted", rule)
		}
	}
}

func TestFileURLs(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app")
	if err := os.Mkdir(app, 0o755); err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(app, "hello.vxml")
	if err := os.WriteFile(doc, []byte("<vxml/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret.txt")
	if err := os.WriteFile(secret, []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(app, "link.txt")); err != nil {
		t.Fatal(err)
	}
	u := "file://" + filepath.ToSlash(doc)

	f := newFetcher(t, nil, func(c *Config) { c.AllowFile = true })
	res, err := f.Fetch(context.Background(), &vxml.FetchRequest{URL: u + "?x=1", Method: "GET", MaxAge: -1, MaxStale: -1})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != "<vxml/>" || res.ContentType != "application/voicexml+xml" || res.URL != u+"?x=1" {
		t.Fatalf("got %q %q %q", res.Body, res.ContentType, res.URL)
	}
	if _, err := f.Get(context.Background(), u+".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}

	rooted := newFetcher(t, nil, func(c *Config) { c.AllowFile = true; c.FileRoots = []string{app} })
	if _, err := rooted.Get(context.Background(), u); err != nil {
		t.Fatalf("inside root: %v", err)
	}
	for _, p := range []string{secret, filepath.Join(app, "link.txt"), filepath.Join(app, "..", "secret.txt")} {
		if _, err := rooted.Get(context.Background(), "file://"+filepath.ToSlash(p)); !errors.Is(err, ErrDenied) {
			t.Fatalf("%s: err = %v, want ErrDenied", p, err)
		}
	}
	if _, err := rooted.Get(context.Background(), "file://otherhost"+filepath.ToSlash(doc)); !errors.Is(err, ErrDenied) {
		t.Fatalf("remote host file URL: %v", err)
	}

	off := newFetcher(t, nil, nil)
	if _, err := off.Get(context.Background(), u); !errors.Is(err, ErrDenied) {
		t.Fatalf("file disabled: err = %v", err)
	}
}

func TestPostURLEncoded(t *testing.T) {
	var got struct {
		ct, body string
	}
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.ct, got.body = r.Header.Get("Content-Type"), string(b)
		io.WriteString(w, "<vxml/>")
	})
	f := newFetcher(t, nil, nil)
	_, err := f.Fetch(context.Background(), &vxml.FetchRequest{URL: o.URL + "/submit", Method: "post",
		Values: []vxml.NameValue{{Name: "zeta", Value: "a b&c"}, {Name: "alpha", Value: "é"}, {Name: "n", Value: 42}},
		MaxAge: -1, MaxStale: -1})
	if err != nil {
		t.Fatal(err)
	}
	if got.ct != vxml.EnctypeURLEncoded || got.body != "zeta=a+b%26c&alpha=%C3%A9&n=42" {
		t.Fatalf("content type %q body %q", got.ct, got.body)
	}
	// GET values go to the query, after existing parameters.
	_, err = f.Fetch(context.Background(), &vxml.FetchRequest{URL: o.URL + "/q?k=v#top", Method: "GET",
		Values: []vxml.NameValue{{Name: "b", Value: "2"}, {Name: "a", Value: "1"}}, MaxAge: -1, MaxStale: -1})
	if err != nil {
		t.Fatal(err)
	}
	if q := o.lastRequest().URL.RawQuery; q != "k=v&b=2&a=1" {
		t.Fatalf("query %q", q)
	}
}

func TestPostMultipart(t *testing.T) {
	wavRec := append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), make([]byte, 40)...)
	type part struct{ name, filename, ct, data string }
	var parts []part
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != vxml.EnctypeMultipart {
			http.Error(w, "bad type", 400)
			return
		}
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(p)
			parts = append(parts, part{p.FormName(), p.FileName(), p.Header.Get("Content-Type"), string(b)})
		}
		io.WriteString(w, "<vxml/>")
	})
	f := newFetcher(t, nil, nil)
	_, err := f.Fetch(context.Background(), &vxml.FetchRequest{URL: o.URL + "/upload", Method: "POST", Enctype: vxml.EnctypeMultipart,
		Values: []vxml.NameValue{
			{Name: "caller", Value: "5551000"},
			{Name: "msg", Value: wavRec},
			{Name: "typed", Value: FileValue{ContentType: "audio/basic", Data: []byte{0xff, 0x7f}}},
		}, MaxAge: -1, MaxStale: -1})
	if err != nil {
		t.Fatal(err)
	}
	want := []part{
		{"caller", "", "", "5551000"},
		{"msg", "msg.wav", "audio/wav", string(wavRec)},
		{"typed", "typed.bin", "audio/basic", "\xff\x7f"},
	}
	if fmt.Sprint(parts) != fmt.Sprint(want) {
		t.Fatalf("parts\n got %q\nwant %q", parts, want)
	}
	if _, err := f.Fetch(context.Background(), &vxml.FetchRequest{URL: o.URL, Method: "POST", Enctype: "text/plain", MaxAge: -1, MaxStale: -1}); err == nil {
		t.Fatal("unsupported enctype accepted")
	}
}

func TestPostInvalidatesCache(t *testing.T) {
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, r.Method)
	})
	f := newFetcher(t, newClock(), nil)
	expectOutcome(t, f, o.URL, OutcomeMiss)
	expectOutcome(t, f, o.URL, OutcomeHit)
	if _, err := f.Fetch(context.Background(), &vxml.FetchRequest{URL: o.URL, Method: "POST", MaxAge: -1, MaxStale: -1}); err != nil {
		t.Fatal(err)
	}
	expectOutcome(t, f, o.URL, OutcomeMiss)
}

func TestBasicAuthByPrefix(t *testing.T) {
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/app/go-out" {
			http.Redirect(w, r, "/public/x", http.StatusFound)
			return
		}
		u, p, ok := r.BasicAuth()
		fmt.Fprintf(w, "%v %s %s", ok, u, p)
	})
	f := newFetcher(t, nil, func(c *Config) {
		c.Credentials = []Credential{
			{Prefix: o.URL + "/app", Username: "ivr", Password: "s3cret"},
			{Prefix: o.URL + "/app/admin/", Username: "admin", Password: "root"},
		}
	})
	for path, want := range map[string]string{
		"/app":              "true ivr s3cret",
		"/app/start.vxml":   "true ivr s3cret",
		"/app/admin/x.vxml": "true admin root",
		"/apple":            "false  ",
		"/public/x":         "false  ",
		"/app/go-out":       "false  ", // credentials do not follow a redirect out of the prefix
	} {
		res := mustGet(t, f, o.URL+path)
		if string(res.Body) != want {
			t.Errorf("%s: %q, want %q", path, res.Body, want)
		}
	}
	if err := f.SetCredentials([]Credential{{Prefix: o.URL + "/", Username: "new", Password: "p"}}); err != nil {
		t.Fatal(err)
	}
	if res := mustGet(t, f, o.URL+"/public/y"); string(res.Body) != "true new p" {
		t.Fatalf("after SetCredentials: %q", res.Body)
	}
	if err := f.SetCredentials([]Credential{{Prefix: "ftp://x", Username: "a"}}); err == nil {
		t.Fatal("invalid prefix accepted")
	}
}

func TestMaxResponseBytes(t *testing.T) {
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		big := strings.Repeat("x", 2048)
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length
		}
		io.WriteString(w, big)
	})
	f := newFetcher(t, nil, func(c *Config) { c.MaxResponseBytes = 1024 })
	for _, p := range []string{"/sized", "/chunked"} {
		if _, err := f.Get(context.Background(), o.URL+p); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s: err = %v, want ErrTooLarge", p, err)
		}
	}
}

func TestHeadersAndVary(t *testing.T) {
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Vary", "Accept, Accept-Encoding")
		fmt.Fprintf(w, "%s|%s", r.Header.Get("User-Agent"), r.Header.Get("Accept"))
	})
	f := newFetcher(t, newClock(), func(c *Config) { c.UserAgent = "gvp-mcp/test" })
	ctx := context.Background()
	doc, err := f.Fetch(ctx, &vxml.FetchRequest{URL: o.URL, Kind: vxml.FetchDocument, Method: "GET", MaxAge: -1, MaxStale: -1})
	if err != nil {
		t.Fatal(err)
	}
	if string(doc.Body) != "gvp-mcp/test|"+acceptByKind[vxml.FetchDocument] {
		t.Fatalf("headers seen by origin: %q", doc.Body)
	}
	expectOutcome(t, f, o.URL, OutcomeMiss, WithKind(vxml.FetchAudio)) // Accept differs
	expectOutcome(t, f, o.URL, OutcomeHit, WithKind(vxml.FetchAudio))
	if DefaultConfig().UserAgent != "gvp-mcp/dev" {
		t.Fatalf("default user agent %q", DefaultConfig().UserAgent)
	}
}

func TestCookieJarPerCall(t *testing.T) {
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("JSESSIONID"); err == nil {
			fmt.Fprintf(w, "session %s", c.Value)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: "abc", Path: "/"})
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "new")
	})
	f := newFetcher(t, newClock(), nil)
	jar, _ := cookiejar.New(nil)
	ctx := WithCookieJar(context.Background(), jar)
	res, err := f.Get(ctx, o.URL+"/start")
	if err != nil || string(res.Body) != "new" {
		t.Fatalf("%v %q", err, res.Body)
	}
	if _, n := f.CacheStats(); n != 0 {
		t.Fatalf("a response with Set-Cookie was cached (%d entries)", n)
	}
	res, err = f.Get(ctx, o.URL+"/next")
	if err != nil || string(res.Body) != "session abc" {
		t.Fatalf("%v %q", err, res.Body)
	}
	// Another call has its own jar.
	res, err = f.Get(WithCookieJar(context.Background(), mustJar()), o.URL+"/next")
	if err != nil || string(res.Body) != "new" {
		t.Fatalf("other call: %v %q", err, res.Body)
	}
}

func mustJar() http.CookieJar {
	j, _ := cookiejar.New(nil)
	return j
}

func TestMetrics(t *testing.T) {
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "12345")
	})
	reg := prometheus.NewRegistry()
	f := newFetcher(t, newClock(), nil, WithRegisterer(reg))
	mustGet(t, f, o.URL)
	mustGet(t, f, o.URL)
	f.Get(context.Background(), o.URL+"/missing")
	for o, want := range map[Outcome]float64{OutcomeMiss: 1, OutcomeHit: 1, OutcomeError: 1} {
		if got := testutil.ToFloat64(f.m.requests[o]); got != want {
			t.Errorf("requests{%v} = %v, want %v", o, got, want)
		}
	}
	if got := testutil.ToFloat64(f.m.servedBytes); got != 10 {
		t.Errorf("served bytes = %v, want 10", got)
	}
	if got := testutil.ToFloat64(f.m.cacheEntries); got != 1 {
		t.Errorf("cache entries = %v, want 1", got)
	}
	n, err := testutil.GatherAndCount(reg, "gvp_mcp_fetch_requests_total", "gvp_mcp_fetch_duration_seconds")
	if err != nil || n == 0 {
		t.Fatalf("gather: %d %v", n, err)
	}
	if _, err := New(DefaultConfig(), WithRegisterer(reg)); err == nil {
		t.Fatal("registering twice succeeded")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"user agent":  func(c *Config) { c.UserAgent = " " },
		"cache":       func(c *Config) { c.CacheBytes = -1 },
		"max body":    func(c *Config) { c.MaxResponseBytes = 0 },
		"redirects":   func(c *Config) { c.MaxRedirects = -1 },
		"timeout":     func(c *Config) { c.Timeout = 0 },
		"heuristic":   func(c *Config) { c.HeuristicFraction = 2 },
		"file root":   func(c *Config) { c.FileRoots = []string{"relative"} },
		"scheme":      func(c *Config) { c.Policy.Schemes = []string{"gopher"} },
		"credentials": func(c *Config) { c.Credentials = []Credential{{Prefix: "http://h/", Username: ""}} },
	} {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}
