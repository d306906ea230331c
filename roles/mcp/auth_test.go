package mcp

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/caller"
	"github.com/opengvp/gvp/internal/fetch"
	"github.com/opengvp/gvp/internal/vxml"
)

// syncBuffer is a log sink safe for the mcp's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// authApp is an application server that requires HTTP Basic ivr:s3cret on every path but
// the initial page (whose URL differs per call anyway: it carries the session's
// identifiers) and marks every answer cacheable (max-age), so only the fetcher's handling of
// credentials keeps one call's responses from another. It records each request with the
// credentials it carried.
type authApp struct {
	url, otherURL string
	mu            sync.Mutex
	hits          []string // "METHOD path ok|none|wrong"
	otherAuth     []string // Authorization headers seen by the other host
}

const authPassword = "s3cret"

func startAuthApp(t *testing.T) *authApp {
	t.Helper()
	a := &authApp{}
	wavBytes, err := os.ReadFile(fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	other := listenLoopback(t)
	osrv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.otherAuth = append(a.otherAuth, r.Header.Get("Authorization"))
		a.mu.Unlock()
		w.Header().Set("Content-Type", "audio/wav")
		_, _ = w.Write(wavBytes)
	})}
	go osrv.Serve(other)
	t.Cleanup(func() { osrv.Close() })
	a.otherURL = "http://" + other.Addr().String()

	docs := map[string]string{
		"/app/start.vxml": `<?xml version="1.0"?><vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
<script src="lib.js"/>
<var name="acct" expr="'42'"/>
<form>
  <data name="info" src="info.xml"/>
  <field name="k">
    <grammar src="keys.grxml"/>
    <property name="timeout" value="100ms"/>
    <noinput><assign name="k" expr="'none'"/></noinput>
  </field>
  <block>
    <if cond="typeof session.connection.protocol.sip.requesturi['http-auth-password'] != 'undefined'">
      <exit expr="'password visible to the application'"/>
    </if>
    <if cond="double(21) != 42 || info.documentElement.getAttribute('ok') != 'yes'"><exit expr="'fail'"/></if>
    <prompt><audio src="hello.wav">hello</audio><audio src="` + a.otherURL + `/other.wav">other</audio></prompt>
    <submit next="result.vxml" namelist="acct" method="post"/>
  </block>
</form></vxml>`,
		"/app/result.vxml": `<?xml version="1.0"?><vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
<form><block><disconnect/></block></form></vxml>`,
		"/app/lib.js":   `function double(x) { return 2 * x; }`,
		"/app/info.xml": `<info ok="yes"/>`,
		"/app/keys.grxml": `<?xml version="1.0"?><grammar xmlns="http://www.w3.org/2001/06/grammar" version="1.0" mode="dtmf" root="r">
<rule id="r" scope="public"><one-of><item>1</item><item>2</item></one-of></rule></grammar>`,
	}
	ln := listenLoopback(t)
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, sent := r.BasicAuth()
		ok := sent && u == "ivr" && p == authPassword
		creds := "ok"
		switch {
		case !sent:
			creds = "none"
		case !ok:
			creds = "wrong"
		}
		a.mu.Lock()
		a.hits = append(a.hits, r.Method+" "+r.URL.Path+" "+creds)
		a.mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=300")
		if !ok && r.URL.Path != "/app/start.vxml" {
			w.Header().Set("WWW-Authenticate", `Basic realm="ivr"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		switch {
		case r.URL.Path == "/app/hello.wav":
			w.Header().Set("Content-Type", "audio/wav")
			_, _ = w.Write(wavBytes)
		case strings.HasSuffix(r.URL.Path, ".js"):
			w.Header().Set("Content-Type", "application/ecmascript")
			fmt.Fprint(w, docs[r.URL.Path])
		case strings.HasSuffix(r.URL.Path, ".grxml"):
			w.Header().Set("Content-Type", "application/srgs+xml")
			fmt.Fprint(w, docs[r.URL.Path])
		case strings.HasSuffix(r.URL.Path, ".xml"):
			w.Header().Set("Content-Type", "application/xml")
			fmt.Fprint(w, docs[r.URL.Path])
		case docs[r.URL.Path] != "":
			w.Header().Set("Content-Type", "application/voicexml+xml")
			fmt.Fprint(w, docs[r.URL.Path])
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	a.url = "http://" + ln.Addr().String() + "/app/start.vxml"
	return a
}

func (a *authApp) take() (hits, other []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	hits, other = a.hits, a.otherAuth
	a.hits, a.otherAuth = nil, nil
	return hits, other
}

// sessionEnd returns the detail of the vxml.end call event of a session.
func sessionEnd(h *harness, sessionID string) string {
	for _, rec := range h.pub.Records() {
		if ev, ok := rec.(*billing.Event); ok && ev.SessionID == sessionID && ev.Kind == "vxml.end" {
			return ev.Detail
		}
	}
	return ""
}

// TestVoiceXMLCallBasicAuth: the http-auth-* parameters of the Request-URI (an IVR profile's
// parameters, passed on by rm) authenticate every fetch of the call to the application
// server — initial page, script, data, grammar, audio, submit — and nothing else: a host outside the
// initial page's origin gets no credential, a later call without credentials or with a
// wrong password is refused (error.badfetch.http.401) although every answer was cacheable,
// and the password shows neither in the application's session variables nor in the log.
func TestVoiceXMLCallBasicAuth(t *testing.T) {
	app := startAuthApp(t)
	logs := &syncBuffer{}
	h := startMCP(t, func(_ *Config, d *Deps) {
		d.Log = zerolog.New(logs).Level(zerolog.DebugLevel)
	})
	a := newAgent(t)
	call := func(params string) caller.Result {
		t.Helper()
		r := a.Run(context.Background(), caller.Options{
			Target:      h.uri("dialog", ";voicexml="+url.QueryEscape(app.url)+params),
			MaxDuration: 20 * time.Second})
		if r.Code != 200 || r.HungUpBy != "remote" {
			t.Fatalf("call %s: %+v", params, r)
		}
		waitFor(t, "session end recorded", 5*time.Second, func() bool { return sessionEnd(h, r.SessionID) != "" })
		return r
	}

	r := call(";http-auth-user=ivr;http-auth-password=" + authPassword)
	if end := sessionEnd(h, r.SessionID); !strings.HasPrefix(end, string(vxml.ReasonDisconnect)) {
		t.Fatalf("authenticated call ended %q", end)
	}
	hits, other := app.take()
	// The prompt is queued and plays at the <disconnect> of the submitted page, after the POST.
	want := []string{"GET /app/start.vxml ok", "GET /app/lib.js ok", "GET /app/info.xml ok",
		"GET /app/keys.grxml ok", "POST /app/result.vxml ok", "GET /app/hello.wav ok"}
	if strings.Join(hits, "; ") != strings.Join(want, "; ") {
		t.Fatalf("application server saw\n  %s\nwant\n  %s", strings.Join(hits, "; "), strings.Join(want, "; "))
	}
	if len(other) != 1 || other[0] != "" {
		t.Fatalf("the other host saw Authorization %q", other)
	}

	// The script the first call fetched (cacheable, same URL) is not served to these calls.
	for params, creds := range map[string]string{"": "none", ";http-auth-user=ivr;http-auth-password=guess": "wrong"} {
		r := call(params)
		if end := sessionEnd(h, r.SessionID); !strings.Contains(end, "error.badfetch.http.401") {
			t.Fatalf("call %q ended %q, want error.badfetch.http.401", params, end)
		}
		hits, _ := app.take()
		if want := "GET /app/start.vxml " + creds + "; GET /app/lib.js " + creds; strings.Join(hits, "; ") != want {
			t.Fatalf("call %q: application server saw %q, want %q", params, hits, want)
		}
	}

	// A password without a user is refused at the INVITE; the logged Request-URI hides it.
	_, err := dial(t, a, h.uri("dialog", ";voicexml="+url.QueryEscape(app.url)+";http-auth-password="+authPassword), caller.DialOptions{})
	wantStatus(t, err, 400)
	waitFor(t, "rejection logged", 5*time.Second, func() bool { return strings.Contains(logs.String(), "invite rejected") })
	if l := logs.String(); strings.Contains(l, authPassword) || !strings.Contains(l, "http-auth-password=redacted") {
		t.Fatalf("log shows the password or lacks the redacted parameter:\n%s", l)
	}
}

func TestParseEntryCredentials(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want []fetch.Credential
		bad  bool
	}{
		{uri: "sip:dialog@h;voicexml=http://app:8080/ivr/s.vxml;http-auth-user=ivr;http-auth-password=p%3Bw",
			want: []fetch.Credential{{Prefix: "http://app:8080/", Username: "ivr", Password: "p;w"}}},
		{uri: "sip:dialog@h;voicexml=https://app/s.vxml;http-auth-user=ivr;http-auth-password=x;http-auth-prefix=https://api/v1/",
			want: []fetch.Credential{{Prefix: "https://api/v1/", Username: "ivr", Password: "x"}}},
		{uri: "sip:annc@h;play=https://media/a.wav;HTTP-AUTH-USER=u;http-auth-password=",
			want: []fetch.Credential{{Prefix: "https://media/", Username: "u", Password: ""}}},
		{uri: "sip:dialog@h;voicexml=http://app/s.vxml"},
		{uri: "sip:dialog@h;voicexml=http://app/s.vxml;http-auth-user=ivr", bad: true},
		{uri: "sip:dialog@h;voicexml=http://app/s.vxml;http-auth-password=x", bad: true},
		{uri: "sip:dialog@h;voicexml=http://app/s.vxml;http-auth-prefix=http://app/", bad: true},
		{uri: "sip:dialog@h;voicexml=http://app/s.vxml;http-auth-user=a:b;http-auth-password=x", bad: true},
		{uri: "sip:annc@h;play=file:///p/a.wav;http-auth-user=u;http-auth-password=x", bad: true},
		{uri: "sip:dialog@h;voicexml=http://app/s.vxml;http-auth-user=u;http-auth-password=x;http-auth-prefix=ftp://f/", bad: true},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			e, err := ParseEntry(parseURI(t, tc.uri))
			if tc.bad {
				if err == nil {
					t.Fatalf("accepted: %+v", e.credentials)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(e.credentials, tc.want) {
				t.Fatalf("credentials %+v, want %+v", e.credentials, tc.want)
			}
			if _, ok := e.ParamMap()[ParamAuthPassword]; ok {
				t.Fatalf("password left in the parameters: %v", e.Params)
			}
		})
	}
	_, err := ParseEntry(parseURI(t, "sip:dialog@h;voicexml=http://app/s.vxml;http-auth-user=u;http-auth-password=ab%zzcd"))
	if err == nil || strings.Contains(err.Error(), "zz") {
		t.Fatalf("bad escape in the password: %v", err)
	}
	u := parseURI(t, "sip:dialog@h;voicexml=http://app/s.vxml;http-auth-user=u;http-auth-password=topsecret")
	if s := redactedURI(u); strings.Contains(s, "topsecret") || !strings.Contains(s, "http-auth-user=u") {
		t.Fatalf("redacted %q", s)
	}
	if v, _ := u.UriParams.Get(ParamAuthPassword); v != "topsecret" {
		t.Fatal("redactedURI changed the request's URI")
	}
}

// TestAnnouncementBasicAuth: an announcement's audio on the application server is fetched with
// the call's http-auth-* credentials and played; without them the server refuses it, the
// fetch fails and the mcp ends the call without audio.
func TestAnnouncementBasicAuth(t *testing.T) {
	app := startAuthApp(t)
	h := startMCP(t, nil)
	a := newAgent(t)
	audio := strings.TrimSuffix(app.url, "start.vxml") + "hello.wav"
	for _, tc := range []struct {
		params, creds string
		heard         bool
	}{
		{";http-auth-user=ivr;http-auth-password=" + authPassword, "ok", true},
		{"", "none", false},
	} {
		r := a.Run(context.Background(), caller.Options{Target: h.uri("annc", ";play="+audio+tc.params),
			MaxDuration: 10 * time.Second})
		if r.Code != 200 || r.HungUpBy != "remote" || (r.PacketsReceived >= 50) != tc.heard {
			t.Fatalf("call %q: %+v, want audio %v", tc.params, r, tc.heard)
		}
		if hits, _ := app.take(); len(hits) != 1 || hits[0] != "GET /app/hello.wav "+tc.creds {
			t.Fatalf("call %q: application server saw %q", tc.params, hits)
		}
	}
}
