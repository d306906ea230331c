package rs

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/cdrstore"
)

// API defaults.
const (
	// DefaultArrivalsWindow is the report window of /ems-rs/HIST/arrivals without from/to.
	DefaultArrivalsWindow = 24 * time.Hour
	// DefaultAggregatesWindow is the report window of /ems-rs/HIST/aggregates without from.
	DefaultAggregatesWindow = 40 * 24 * time.Hour
	// MaxEventsPerSession caps the events returned for one session.
	MaxEventsPerSession = 10000
	// requestTimeout bounds the database work of one request.
	requestTimeout = 30 * time.Second
)

// ReportStore is what the reporting web services read; *cdrstore.SQLStore implements it.
type ReportStore interface {
	CDRs(ctx context.Context, q cdrstore.CDRQuery) (cdrstore.CDRPage, error)
	Events(ctx context.Context, sessionID string) ([]billing.Event, error)
	TenantUsage(ctx context.Context, q cdrstore.UsageQuery) ([]cdrstore.TenantUsage, error)
	Arrivals(ctx context.Context, q cdrstore.IntervalQuery) ([]cdrstore.IntervalStat, error)
	Aggregates(ctx context.Context, q cdrstore.AggregateQuery) ([]cdrstore.Aggregate, error)
}

// API serves the reporting web services under /ems-rs/.
type API struct {
	// Store answers the queries.
	Store ReportStore
	// Token, when set, is required as "Authorization: Bearer <token>" (or as the password of
	// HTTP Basic authentication, for browsers).
	Token string
	// Location sets hour, day, week and month boundaries; UTC when nil.
	Location *time.Location
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

func (a *API) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *API) loc() *time.Location {
	if a.Location != nil {
		return a.Location
	}
	return time.UTC
}

// Filter parameters of the CDR queries, as named by GVP's reporting web services.
var cdrParams = []string{"started-from", "started-to", "ended-from", "ended-to", "tenant-id", "app-id", "dn",
	"remote-uri", "local-uri", "session-id", "gvp-guid", "page", "page-size"}

// Register adds the /ems-rs/ endpoints to mux.
func (a *API) Register(mux *http.ServeMux) {
	for _, mode := range []string{"RT", "HIST"} {
		state := billing.StateInProgress
		if mode == "HIST" {
			state = billing.StateCompleted
		}
		for _, comp := range []billing.Component{billing.ComponentRM, billing.ComponentMCP} {
			path := "GET /ems-rs/" + mode + "/CDRs/" + strings.ToUpper(string(comp)) + "/details"
			mux.Handle(path, a.auth(a.report(a.details(comp, state)), false))
		}
	}
	mux.Handle("GET /ems-rs/HIST/CDRs/MCP/events", a.auth(a.report(a.events), false))
	mux.Handle("GET /ems-rs/RT/tenants/usage", a.auth(a.report(a.usage), false))
	mux.Handle("GET /ems-rs/HIST/arrivals", a.auth(a.report(a.arrivals), false))
	mux.Handle("GET /ems-rs/HIST/aggregates/{period}", a.auth(a.report(a.aggregates), false))
	mux.Handle("/ems-rs/", a.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, http.StatusNotFound, &paramError{msg: "no such report: " + r.URL.Path})
	}), false))
}

// auth enforces the token when one is configured. browser selects the challenge: Basic (the
// browser asks for the token as password) or Bearer.
func (a *API) auth(h http.Handler, browser bool) http.Handler {
	if a.Token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := ""
		authz := r.Header.Get("Authorization")
		if t, ok := strings.CutPrefix(authz, "Bearer "); ok {
			got = strings.TrimSpace(t)
		} else if _, p, ok := r.BasicAuth(); ok {
			got = p
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(a.Token)) != 1 {
			if browser {
				w.Header().Set("WWW-Authenticate", `Basic realm="gvp-rs", charset="UTF-8"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="gvp-rs"`)
			}
			a.fail(w, r, http.StatusUnauthorized, &paramError{msg: "missing or wrong bearer token"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// paramError is a request the API refuses; param names the bad query parameter. status is
// the HTTP status, 400 when zero.
type paramError struct {
	param, msg string
	status     int
}

func (e *paramError) Error() string {
	if e.param == "" {
		return e.msg
	}
	return e.param + ": " + e.msg
}

func badParam(param, format string, args ...any) *paramError {
	return &paramError{param: param, msg: fmt.Sprintf(format, args...)}
}

// query checks that r has only allowed parameters, each at most once.
func query(r *http.Request, allowed ...string) (url.Values, *paramError) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, &paramError{msg: "malformed query string: " + err.Error()}
	}
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !slices.Contains(allowed, k) {
			return nil, badParam(k, "unknown parameter (allowed: %s)", strings.Join(allowed, ", "))
		}
		if len(v[k]) > 1 {
			return nil, badParam(k, "given more than once")
		}
	}
	return v, nil
}

// ParseTime reads a report timestamp: RFC 3339 (e.g. 2025-03-10T09:00:00Z, with an optional
// fraction and any offset) or integer milliseconds since the Unix epoch.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("empty time")
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 || ms > 1<<53 {
			return time.Time{}, fmt.Errorf("epoch milliseconds %d out of range", ms)
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time %q (want RFC 3339, e.g. 2025-03-10T09:00:00Z, or epoch milliseconds)", s)
	}
	return t.UTC(), nil
}

func timeParam(v url.Values, name string) (time.Time, *paramError) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := ParseTime(s)
	if err != nil {
		return time.Time{}, badParam(name, "%v", err)
	}
	return t, nil
}

func intParam(v url.Values, name string, lo, hi int) (int, *paramError) {
	s := v.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badParam(name, "want an integer from %d to %d, got %q", lo, hi, s)
	}
	return n, nil
}

func componentParam(v url.Values) (billing.Component, *paramError) {
	switch strings.ToLower(v.Get("component")) {
	case "", "rm":
		return billing.ComponentRM, nil
	case "mcp":
		return billing.ComponentMCP, nil
	}
	return "", badParam("component", "want RM or MCP, got %q", v.Get("component"))
}

// cdrQuery builds a store query from the GVP filter parameters.
func cdrQuery(v url.Values) (cdrstore.CDRQuery, *paramError) {
	q := cdrstore.CDRQuery{TenantID: v.Get("tenant-id"), AppID: v.Get("app-id"), DN: v.Get("dn"),
		RemoteURI: v.Get("remote-uri"), LocalURI: v.Get("local-uri"), SessionID: v.Get("session-id"),
		RecordID: v.Get("gvp-guid")}
	var perr *paramError
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"started-from", &q.StartedFrom}, {"started-to", &q.StartedTo}, {"ended-from", &q.EndedFrom}, {"ended-to", &q.EndedTo}} {
		if *f.dst, perr = timeParam(v, f.name); perr != nil {
			return q, perr
		}
	}
	if !q.StartedFrom.IsZero() && !q.StartedTo.IsZero() && !q.StartedTo.After(q.StartedFrom) {
		return q, badParam("started-to", "must be after started-from")
	}
	if !q.EndedFrom.IsZero() && !q.EndedTo.IsZero() && !q.EndedTo.After(q.EndedFrom) {
		return q, badParam("ended-to", "must be after ended-from")
	}
	if q.Page, perr = intParam(v, "page", 1, 1_000_000); perr != nil {
		return q, perr
	}
	if q.PageSize, perr = intParam(v, "page-size", 1, cdrstore.MaxPageSize); perr != nil {
		return q, perr
	}
	return q, nil
}

func (a *API) details(comp billing.Component, state billing.State) reportFunc {
	return func(ctx context.Context, r *http.Request) (any, error) {
		q, err := cdrRequest(r)
		if err != nil {
			return nil, err
		}
		q.Component, q.State = comp, state
		page, err := a.Store.CDRs(ctx, q)
		if err != nil {
			return nil, err
		}
		return newCDRList(page), nil
	}
}

// reportFunc validates a request and queries the store for one report. A *paramError is
// answered with its status (400 by default), any other error through storeFailed.
type reportFunc func(ctx context.Context, r *http.Request) (any, error)

// report runs f under the request timeout and writes its result in the requested format.
func (a *API) report(f reportFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		v, err := f(ctx, r)
		var pe *paramError
		switch {
		case errors.As(err, &pe):
			status := pe.status
			if status == 0 {
				status = http.StatusBadRequest
			}
			a.fail(w, r, status, pe)
		case err != nil:
			a.storeFailed(w, r, err)
		default:
			a.write(w, r, v)
		}
	})
}

// cdrRequest reads the CDR filters of a request.
func cdrRequest(r *http.Request) (cdrstore.CDRQuery, error) {
	v, perr := query(r, cdrParams...)
	if perr != nil {
		return cdrstore.CDRQuery{}, perr
	}
	q, perr := cdrQuery(v)
	if perr != nil {
		return q, perr
	}
	return q, nil
}

// SessionEvents is the events of one GVP session.
type SessionEvents struct {
	XMLName   xml.Name        `json:"-" xml:"session"`
	SessionID string          `json:"gvp_session_id" xml:"id,attr"`
	Events    []billing.Event `json:"events" xml:"event"`
}

// EventList answers /ems-rs/HIST/CDRs/MCP/events: the sessions of the matching MCP CDRs.
type EventList struct {
	XMLName  xml.Name        `json:"-" xml:"sessions"`
	Page     int             `json:"page" xml:"page,attr"`
	PageSize int             `json:"page_size" xml:"page-size,attr"`
	Total    int             `json:"total" xml:"total,attr"`
	Sessions []SessionEvents `json:"sessions" xml:"session"`
}

func (a *API) events(ctx context.Context, r *http.Request) (any, error) {
	q, err := cdrRequest(r)
	if err != nil {
		return nil, err
	}
	q.Component, q.State = billing.ComponentMCP, billing.StateCompleted
	page, err := a.Store.CDRs(ctx, q)
	if err != nil {
		return nil, err
	}
	out := EventList{Page: page.Page, PageSize: page.PageSize, Total: page.Total, Sessions: []SessionEvents{}}
	seen := map[string]bool{}
	for _, c := range page.CDRs {
		if seen[c.SessionID] {
			continue
		}
		seen[c.SessionID] = true
		evs, err := a.Store.Events(ctx, c.SessionID)
		if err != nil {
			return nil, err
		}
		if len(evs) > MaxEventsPerSession {
			evs = evs[:MaxEventsPerSession]
		}
		if evs == nil {
			evs = []billing.Event{}
		}
		out.Sessions = append(out.Sessions, SessionEvents{SessionID: c.SessionID, Events: evs})
	}
	return out, nil
}

// UsageReport answers /ems-rs/RT/tenants/usage.
type UsageReport struct {
	XMLName xml.Name               `json:"-" xml:"tenants"`
	Time    time.Time              `json:"time" xml:"time,attr"`
	Tenants []cdrstore.TenantUsage `json:"tenants" xml:"tenant"`
}

func (a *API) usage(ctx context.Context, r *http.Request) (any, error) {
	v, perr := query(r, "tenant-id", "component")
	if perr != nil {
		return nil, perr
	}
	comp, perr := componentParam(v)
	if perr != nil {
		return nil, perr
	}
	now := a.now()
	us, err := a.Store.TenantUsage(ctx, cdrstore.UsageQuery{Component: comp, Now: now, Location: a.loc()})
	if err != nil {
		return nil, err
	}
	out := UsageReport{Time: now.UTC(), Tenants: []cdrstore.TenantUsage{}}
	for _, u := range us {
		if t := v.Get("tenant-id"); t == "" || t == u.TenantID {
			out.Tenants = append(out.Tenants, u)
		}
	}
	return out, nil
}

// ParseInterval reads an arrivals interval: 5m (also 5min), 1h (hour) or 1d (day, 24h).
func ParseInterval(s string) (time.Duration, error) {
	switch strings.ToLower(s) {
	case "5m", "5min":
		return 5 * time.Minute, nil
	case "1h", "h", "hour", "60m":
		return time.Hour, nil
	case "1d", "d", "day", "24h":
		return 24 * time.Hour, nil
	}
	return 0, fmt.Errorf("want 5m, 1h or 1d, got %q", s)
}

func intervalName(d time.Duration) string {
	switch d {
	case 5 * time.Minute:
		return "5m"
	case time.Hour:
		return "1h"
	}
	return "1d"
}

// ArrivalsReport answers /ems-rs/HIST/arrivals.
type ArrivalsReport struct {
	XMLName   xml.Name                `json:"-" xml:"arrivals"`
	Interval  string                  `json:"interval" xml:"interval,attr"`
	From      time.Time               `json:"from" xml:"from,attr"`
	To        time.Time               `json:"to" xml:"to,attr"`
	Component billing.Component       `json:"component" xml:"component,attr"`
	Intervals []cdrstore.IntervalStat `json:"intervals" xml:"interval"`
}

// arrivalsQuery reads the parameters of the arrivals report.
func (a *API) arrivalsQuery(v url.Values) (cdrstore.IntervalQuery, *paramError) {
	q := cdrstore.IntervalQuery{Interval: 5 * time.Minute, TenantID: v.Get("tenant-id"), Profile: v.Get("app-id"),
		Location: a.loc()}
	if s := v.Get("interval"); s != "" {
		d, err := ParseInterval(s)
		if err != nil {
			return q, badParam("interval", "%v", err)
		}
		q.Interval = d
	}
	var perr *paramError
	if q.Component, perr = componentParam(v); perr != nil {
		return q, perr
	}
	if q.From, perr = timeParam(v, "from"); perr != nil {
		return q, perr
	}
	if q.To, perr = timeParam(v, "to"); perr != nil {
		return q, perr
	}
	if q.To.IsZero() {
		q.To = a.now().UTC()
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-DefaultArrivalsWindow)
	}
	if !q.To.After(q.From) {
		return q, badParam("to", "must be after from")
	}
	if n := q.To.Sub(q.From) / q.Interval; n > 10_000 {
		return q, badParam("from", "the report would have %d intervals; at most 10000", n)
	}
	return q, nil
}

func (a *API) arrivals(ctx context.Context, r *http.Request) (any, error) {
	v, perr := query(r, "interval", "from", "to", "tenant-id", "app-id", "component")
	if perr != nil {
		return nil, perr
	}
	q, perr := a.arrivalsQuery(v)
	if perr != nil {
		return nil, perr
	}
	st, err := a.Store.Arrivals(ctx, q)
	if err != nil {
		return nil, err
	}
	if st == nil {
		st = []cdrstore.IntervalStat{}
	}
	for i := range st {
		st[i].Start = st[i].Start.UTC()
	}
	return ArrivalsReport{Interval: intervalName(q.Interval), From: q.From, To: q.To, Component: q.Component, Intervals: st}, nil
}

// AggregatesReport answers /ems-rs/HIST/aggregates/{daily,weekly,monthly}.
type AggregatesReport struct {
	XMLName    xml.Name             `json:"-" xml:"aggregates"`
	Period     cdrstore.Period      `json:"period" xml:"period,attr"`
	Aggregates []cdrstore.Aggregate `json:"aggregates" xml:"aggregate"`
}

func (a *API) aggregates(ctx context.Context, r *http.Request) (any, error) {
	p, err := cdrstore.ParsePeriod(r.PathValue("period"))
	if err != nil {
		return nil, &paramError{status: http.StatusNotFound,
			msg: fmt.Sprintf("no such report %s (want daily, weekly or monthly)", r.URL.Path)}
	}
	v, perr := query(r, "from", "to", "tenant-id", "app-id", "component")
	if perr != nil {
		return nil, perr
	}
	q := cdrstore.AggregateQuery{Period: p, TenantID: v.Get("tenant-id"), Profile: v.Get("app-id")}
	if q.Component, perr = componentParam(v); perr != nil {
		return nil, perr
	}
	if q.From, perr = timeParam(v, "from"); perr != nil {
		return nil, perr
	}
	if q.To, perr = timeParam(v, "to"); perr != nil {
		return nil, perr
	}
	if q.From.IsZero() {
		q.From = a.now().Add(-DefaultAggregatesWindow)
	}
	if !q.To.IsZero() && !q.To.After(q.From) {
		return nil, badParam("to", "must be after from")
	}
	rows, err := a.Store.Aggregates(ctx, q)
	if err != nil {
		return nil, err
	}
	if rows == nil {
		rows = []cdrstore.Aggregate{}
	}
	return AggregatesReport{Period: p, Aggregates: rows}, nil
}

// wantsXML reports whether the client asked for XML in Accept.
func wantsXML(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "application/xml", "text/xml":
			return true
		case "application/json":
			return false
		}
	}
	return false
}

// write renders v as JSON, or as XML when the client asked for it.
func (a *API) write(w http.ResponseWriter, r *http.Request, v any) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Add("Vary", "Accept")
	if wantsXML(r) {
		b, err := xml.MarshalIndent(v, "", "  ")
		if err != nil {
			http.Error(w, "encode xml: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		_, _ = w.Write([]byte(xml.Header))
		_, _ = w.Write(b)
		_, _ = w.Write([]byte("\n"))
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode json: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(append(b, '\n'))
}

// ErrorBody is the body of a refused request.
type ErrorBody struct {
	XMLName   xml.Name `json:"-" xml:"error"`
	Status    int      `json:"status" xml:"status,attr"`
	Parameter string   `json:"parameter,omitempty" xml:"parameter,attr,omitempty"`
	Message   string   `json:"error" xml:",chardata"`
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, status int, e *paramError) {
	body := ErrorBody{Status: status, Parameter: e.param, Message: e.Error()}
	if wantsXML(r) {
		b, _ := xml.Marshal(body)
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(xml.Header))
		_, _ = w.Write(append(b, '\n'))
		return
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// storeFailed answers a failed query: 400 for a query the store refused, else 503 (the
// database is unreachable; the reason is also on /readyz).
func (a *API) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, cdrstore.ErrBadQuery) {
		a.fail(w, r, http.StatusBadRequest, &paramError{msg: err.Error()})
		return
	}
	a.fail(w, r, http.StatusServiceUnavailable, &paramError{msg: "database unavailable: " + err.Error()})
}
