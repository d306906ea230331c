package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/vxml"
)

// authOrigin is a web server that answers 401 unless the request carries Basic user:pass;
// cc is the Cache-Control of its 200 answers (by path) and every answer names the user.
func authOrigin(t *testing.T, user, pass string, cc map[string]string) *origin {
	return newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="ivr"`)
			w.Header().Set("Cache-Control", "max-age=300")
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		c, ok := cc[r.URL.Path]
		if !ok {
			c = "max-age=300"
		}
		w.Header().Set("Cache-Control", c)
		w.Header().Set("ETag", `"v1"`)
		fmt.Fprintf(w, "for %s", u)
	})
}

func withCreds(t *testing.T, prefix, user, pass string) context.Context {
	t.Helper()
	cc, err := CompileCredentials([]Credential{{Prefix: prefix, Username: user, Password: pass}})
	if err != nil {
		t.Fatal(err)
	}
	return cc.Context(context.Background())
}

func wantStatus(t *testing.T, err error, code int) {
	t.Helper()
	var fe *vxml.FetchError
	if !errors.As(err, &fe) || fe.StatusCode != code {
		t.Fatalf("error %v, want http status %d", err, code)
	}
}

// TestCallCredentialsNotShared: a call's credentials are sent to its prefix only, and the
// shared cache never hands a response fetched with them to another request (RFC 9111
// section 3.5), neither from the store nor by coalescing, even when the response itself
// says max-age.
func TestCallCredentialsNotShared(t *testing.T) {
	o := authOrigin(t, "ivr", "s3cret", nil)
	f := newFetcher(t, nil, nil)
	call := withCreds(t, o.URL+"/", "ivr", "s3cret")
	u := o.URL + "/app/start.vxml"

	for i := 0; i < 2; i++ {
		res, err := f.Get(call, u)
		if err != nil || string(res.Body) != "for ivr" || res.Outcome != OutcomeMiss {
			t.Fatalf("fetch %d with credentials: %v %+v", i, err, res)
		}
	}
	if n := o.requests.Load(); n != 2 {
		t.Fatalf("origin saw %d requests, want 2: a response to an authorized request was reused", n)
	}
	if _, n := f.CacheStats(); n != 0 {
		t.Fatalf("cache holds %d entries", n)
	}
	// Another call without credentials, or with wrong ones, goes to the origin and is refused.
	_, err := f.Fetch(context.Background(), &vxml.FetchRequest{URL: u, Kind: vxml.FetchDocument, MaxAge: -1, MaxStale: -1})
	wantStatus(t, err, http.StatusUnauthorized)
	_, err = f.Get(withCreds(t, o.URL+"/", "ivr", "guess"), u)
	wantStatus(t, err, http.StatusUnauthorized)
	if n := o.requests.Load(); n != 4 {
		t.Fatalf("origin saw %d requests, want 4", n)
	}
}

// TestCallCredentialsCoalescing: a call without credentials waiting on the in-flight fetch of
// a call with credentials does not get its response.
func TestCallCredentialsCoalescing(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int32
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) == 1 {
			<-release
		}
		if _, p, ok := r.BasicAuth(); !ok || p != "s3cret" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Cache-Control", "max-age=300")
		fmt.Fprint(w, "secret page")
	})
	f := newFetcher(t, nil, nil)
	u := o.URL + "/app/menu.vxml"
	authed := make(chan error, 1)
	go func() {
		_, err := f.Get(withCreds(t, o.URL+"/", "ivr", "s3cret"), u)
		authed <- err
	}()
	waitUntil(t, func() bool { return arrived.Load() == 1 })
	anon := make(chan error, 1)
	go func() {
		res, err := f.Get(context.Background(), u)
		if err == nil {
			err = fmt.Errorf("got %q", res.Body)
		}
		anon <- err
	}()
	waitUntil(t, func() bool {
		f.flightsMu.Lock()
		defer f.flightsMu.Unlock()
		fl := f.flights[u]
		return fl != nil && fl.waiters.Load() == 1
	})
	close(release)
	if err := <-authed; err != nil {
		t.Fatalf("call with credentials: %v", err)
	}
	wantStatus(t, <-anon, http.StatusUnauthorized)
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAuthorizedResponseSharedWhenAllowed: public, s-maxage and must-revalidate let a
// response to an authorized request serve others (RFC 9111 section 3.5); private and
// proxy-revalidate do not.
func TestAuthorizedResponseSharedWhenAllowed(t *testing.T) {
	cases := map[string]bool{
		"/public":          true,
		"/s-maxage":        true,
		"/must-revalidate": true,
		"/public-private":  false,
		"/proxy-reval":     false,
		"/max-age":         false,
	}
	o := authOrigin(t, "ivr", "s3cret", map[string]string{
		"/public":          "public, max-age=300",
		"/s-maxage":        "s-maxage=300, max-age=300",
		"/must-revalidate": "max-age=300, must-revalidate",
		"/public-private":  "public, private, max-age=300",
		"/proxy-reval":     "max-age=300, proxy-revalidate",
		"/max-age":         "max-age=300",
	})
	f := newFetcher(t, nil, nil)
	call := withCreds(t, o.URL+"/", "ivr", "s3cret")
	for path, shared := range cases {
		if _, err := f.Get(call, o.URL+path); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		res, err := f.Get(context.Background(), o.URL+path)
		switch {
		case shared && (err != nil || res.Outcome != OutcomeHit || string(res.Body) != "for ivr"):
			t.Errorf("%s: want a cache hit for another request, got %v %+v", path, err, res)
		case !shared:
			var fe *vxml.FetchError
			if !errors.As(err, &fe) || fe.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: want 401 from the origin for another request, got %v", path, err)
			}
		}
	}
}

// TestCallCredentialsScope: a call's credential goes to its prefix only (never to another
// host), wins over the configured credentials there, and leaves them in force elsewhere.
// The password never reaches the log.
func TestCallCredentialsScope(t *testing.T) {
	var seen atomic.Value
	other := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get("Authorization"))
		fmt.Fprint(w, "ok")
	})
	app := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		fmt.Fprintf(w, "%s:%s", u, p)
	})
	var logs bytes.Buffer
	f := newFetcher(t, nil, func(c *Config) {
		c.Credentials = []Credential{{Prefix: app.URL + "/", Username: "global", Password: "g"}}
	}, WithLogger(zerolog.New(&logs).Level(zerolog.DebugLevel)))
	call := withCreds(t, app.URL+"/app/", "call", "c4llpass")
	for path, want := range map[string]string{
		"/app/start.vxml": "call:c4llpass",
		"/other/x.vxml":   "global:g",
	} {
		res, err := f.Get(call, app.URL+path)
		if err != nil || string(res.Body) != want {
			t.Errorf("%s: %v %q, want %q", path, err, res.Body, want)
		}
	}
	if _, err := f.Get(call, other.URL+"/app/start.vxml"); err != nil {
		t.Fatal(err)
	}
	if a, _ := seen.Load().(string); a != "" {
		t.Fatalf("another host received Authorization %q", a)
	}
	if strings.Contains(logs.String(), "c4llpass") || logs.Len() == 0 {
		t.Fatalf("log (%d bytes) shows the password or is empty", logs.Len())
	}
	if _, err := CompileCredentials([]Credential{{Prefix: "file:///x", Username: "a"}}); err == nil {
		t.Fatal("invalid prefix accepted")
	}
	if cc, err := CompileCredentials(nil); err != nil || credsFrom(cc.Context(context.Background())) != nil {
		t.Fatal("empty credentials changed the context")
	}
}
