package mcp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/opengvp/gvp/internal/fetch"
)

// Service types of the calls an mcp answers (the `type` label of gvp_mcp_sessions).
const (
	ServiceVoiceXML     = "voicexml"
	ServiceAnnouncement = "announcement"
)

// Request-URI user parts of the entry points (RFC 5552 and RFC 4240).
const (
	userDialog = "dialog"
	userAnnc   = "annc"
)

// Limits of announcement parameters.
const (
	// maxRepeat bounds a numeric repeat= value.
	maxRepeat = 10000
	// maxAnncParamDuration bounds delay= and duration=, in milliseconds (24 hours).
	maxAnncParamDuration = 24 * 60 * 60 * 1000
)

// Request-URI parameters (from the IVR profile's parameters, which rm appends to the
// Request-URI) giving the HTTP Basic credentials of the application server.
const (
	// ParamAuthUser is the user name sent to the application server.
	ParamAuthUser = "http-auth-user"
	// ParamAuthPassword is its password. It is removed from Entry.Params (so the application
	// does not see it in session.connection.protocol.sip.requesturi) and redacted in logs.
	ParamAuthPassword = "http-auth-password"
	// ParamAuthPrefix optionally scopes the credential to the URLs under an absolute http(s)
	// URL prefix; by default it covers the origin (scheme, host and port) of the initial page
	// or announcement URL.
	ParamAuthPrefix = "http-auth-prefix"
)

// ErrUnknownService is returned by ParseEntry for a Request-URI that names no service of the
// mcp: the INVITE is answered 404.
var ErrUnknownService = errors.New("unknown service")

// Entry is what a Request-URI asks the mcp to do.
type Entry struct {
	// Service is ServiceVoiceXML or ServiceAnnouncement.
	Service string
	// URL is the VoiceXML initial page (voicexml=) or the announcement audio (play=), with
	// percent-escapes decoded.
	URL string
	// Params are every Request-URI parameter but http-auth-password, values decoded, in the
	// order received (VoiceXML's session.connection.protocol.sip.requesturi).
	Params []Param
	// Repeat is how many times the announcement plays (repeat=, default 1); 0 means forever.
	Repeat int
	// Delay is the silence between two plays of the announcement (delay=).
	Delay time.Duration
	// Duration bounds the whole announcement (duration=); 0 means no bound.
	Duration time.Duration
	// credentials are the call's HTTP Basic credentials as read from its http-auth-*
	// parameters (nil when none were given), and creds the same prepared once for every fetch
	// of the call under their prefix (fetchContext).
	credentials []fetch.Credential
	creds       *fetch.CallCredentials
}

// Param is one Request-URI parameter.
type Param struct {
	Name, Value string
}

// ParseEntry reads the entry point of a Request-URI:
//
//	sip:dialog@host;voicexml=<url>                                        (RFC 5552)
//	sip:annc@host;play=<url>[;repeat=N|forever][;delay=ms][;duration=ms]   (RFC 4240)
//
// It returns an error wrapping ErrUnknownService when the user part names no service, and
// another error when the parameters of a known service are missing or invalid (answered 400).
func ParseEntry(u *sip.Uri) (Entry, error) {
	var e Entry
	if u == nil {
		return e, fmt.Errorf("%w: no request-uri", ErrUnknownService)
	}
	if u.UriParams != nil {
		for _, kv := range u.UriParams {
			v, err := url.PathUnescape(kv.V)
			if err != nil {
				if strings.EqualFold(kv.K, ParamAuthPassword) {
					return e, fmt.Errorf("parameter %s: bad escape", kv.K) // no part of the value
				}
				return e, fmt.Errorf("parameter %s: bad escape: %w", kv.K, err)
			}
			e.Params = append(e.Params, Param{Name: strings.ToLower(kv.K), Value: v})
		}
	}
	switch strings.ToLower(u.User) {
	case userDialog:
		e.Service = ServiceVoiceXML
		e.URL = e.param("voicexml")
		if e.URL == "" {
			return e, errors.New("dialog service needs a voicexml= parameter")
		}
	case userAnnc:
		e.Service = ServiceAnnouncement
		e.Repeat = 1
		e.URL = e.param("play")
		if e.URL == "" {
			return e, errors.New("annc service needs a play= parameter")
		}
		if r := e.param("repeat"); r != "" {
			if strings.EqualFold(r, "forever") {
				e.Repeat = 0
			} else {
				n, err := strconv.Atoi(r)
				if err != nil || n < 1 || n > maxRepeat {
					return e, fmt.Errorf("repeat=%q: want forever or 1-%d", r, maxRepeat)
				}
				e.Repeat = n
			}
		}
		var err error
		if e.Delay, err = msParam(e.param("delay"), "delay"); err != nil {
			return e, err
		}
		if e.Duration, err = msParam(e.param("duration"), "duration"); err != nil {
			return e, err
		}
	default:
		return e, fmt.Errorf("%w: %q", ErrUnknownService, u.User)
	}
	if err := checkMediaURL(e.URL); err != nil {
		return e, err
	}
	if err := e.parseCredentials(); err != nil {
		return e, err
	}
	return e, nil
}

// parseCredentials reads the http-auth-* parameters into e.credentials and removes the
// password from e.Params. A user without password (or the reverse) is an error, as is a
// credential that covers no http(s) URL.
func (e *Entry) parseCredentials() error {
	user, pass, prefix := e.param(ParamAuthUser), "", e.param(ParamAuthPrefix)
	hasPass := false
	params := e.Params[:0]
	for _, p := range e.Params {
		if p.Name == ParamAuthPassword {
			if !hasPass {
				pass, hasPass = p.Value, true
			}
			continue
		}
		params = append(params, p)
	}
	e.Params = params
	switch {
	case user == "" && !hasPass && prefix == "":
		return nil
	case user == "" || !hasPass:
		return fmt.Errorf("%s and %s must be given together", ParamAuthUser, ParamAuthPassword)
	}
	if prefix == "" {
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return fmt.Errorf("%s needs an http(s) URL or %s", ParamAuthUser, ParamAuthPrefix)
		}
		prefix = u.Scheme + "://" + u.Host + "/"
	}
	cs := []fetch.Credential{{Prefix: prefix, Username: user, Password: pass}}
	creds, err := fetch.CompileCredentials(cs)
	if err != nil {
		return fmt.Errorf("%s: %w", ParamAuthPrefix, err)
	}
	e.credentials, e.creds = cs, creds
	return nil
}

// fetchContext returns ctx carrying the entry's credentials for every fetch made with it
// (documents, scripts, grammars, data, submits and audio of the call).
func (e *Entry) fetchContext(ctx context.Context) context.Context { return e.creds.Context(ctx) }

// redactedURI is u as text with the value of http-auth-password replaced, for logs.
func redactedURI(u *sip.Uri) string {
	if u == nil {
		return ""
	}
	isPassword := func(kv sip.HeaderKV) bool { return strings.EqualFold(kv.K, ParamAuthPassword) }
	if !slices.ContainsFunc(u.UriParams, isPassword) {
		return u.String()
	}
	c := u.Clone()
	for i, kv := range c.UriParams {
		if isPassword(kv) {
			c.UriParams[i].V = "redacted"
		}
	}
	return c.String()
}

// param returns the value of the first parameter called name ("" when absent).
func (e *Entry) param(name string) string {
	for _, p := range e.Params {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// ParamMap returns the parameters as a map (the first value of each name wins).
func (e *Entry) ParamMap() map[string]string {
	m := make(map[string]string, len(e.Params))
	for _, p := range e.Params {
		if _, ok := m[p.Name]; !ok {
			m[p.Name] = p.Value
		}
	}
	return m
}

func msParam(v, name string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxAnncParamDuration {
		return 0, fmt.Errorf("%s=%q: want milliseconds from 0 to %d", name, v, maxAnncParamDuration)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// checkMediaURL accepts absolute http, https and file URLs.
func checkMediaURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("url %q: %w", raw, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("url %q: no host", raw)
		}
	case "file":
		if u.Path == "" {
			return fmt.Errorf("url %q: no path", raw)
		}
	default:
		return fmt.Errorf("url %q: scheme must be http, https or file", raw)
	}
	return nil
}
