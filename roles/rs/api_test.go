package rs

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/cdrstore"
)

// day is the reference day of the fixtures: Monday 10 March 2025, UTC.
var day = time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)

func at(h, m int) time.Time {
	return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

// fixture is a SQLite store with a known set of calls and the API over it.
type fixture struct {
	store *cdrstore.SQLStore
	api   *API
	srv   *httptest.Server
	now   time.Time
}

func mkCDR(id string, comp billing.Component, tenant, profile, dnis string, start time.Time, dur time.Duration) *billing.CDR {
	c := &billing.CDR{ID: id + "-" + string(comp), SessionID: "sess-" + id, Component: comp, ComponentName: string(comp) + "-0",
		State: billing.StateInProgress, TenantID: tenant, TenantName: "Tenant " + tenant, Profile: profile, ServiceType: "voicexml",
		DNIS: dnis, ANI: "555" + id, LocalURI: "sip:" + dnis + "@127.0.0.1", RemoteURI: "sip:555" + id + "@127.0.0.1",
		CallID: "call-" + id, MCP: "mcp-0", Start: start}
	if dur > 0 {
		c.Answer = start.Add(time.Second)
		c.Complete(start.Add(dur), billing.EndCallerHangup, "", 0)
	}
	return c
}

// newFixture stores, for each of five calls, an rm and an mcp CDR and two mcp events:
//
//	c1 t1/billing 5551000 09:00-09:10   c2 t1/billing 5551000 09:05-09:20
//	c3 t1/sales   5551001 10:00-10:01   c4 t2/support 5552000 11:00 (in progress)
//	c5 t2/support 5552000 11:30 (in progress)
func newFixture(t *testing.T, token string) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := cdrstore.OpenSQLiteFile(ctx, t.TempDir()+"/rs.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	calls := []struct {
		id, tenant, profile, dnis string
		start                     time.Time
		dur                       time.Duration
	}{
		{"c1", "t1", "billing", "5551000", at(9, 0), 10 * time.Minute},
		{"c2", "t1", "billing", "5551000", at(9, 5), 15 * time.Minute},
		{"c3", "t1", "sales", "5551001", at(10, 0), time.Minute},
		{"c4", "t2", "support", "5552000", at(11, 0), 0},
		{"c5", "t2", "support", "5552000", at(11, 30), 0},
	}
	var b cdrstore.Batch
	for _, c := range calls {
		for _, comp := range []billing.Component{billing.ComponentRM, billing.ComponentMCP} {
			b.CDRs = append(b.CDRs, mkCDR(c.id, comp, c.tenant, c.profile, c.dnis, c.start, c.dur))
		}
		b.Events = append(b.Events,
			&billing.Event{ID: "ev-a-" + c.id, SessionID: "sess-" + c.id, Time: c.start.Add(time.Second), Kind: "prompt", Detail: "welcome.wav <&>"},
			&billing.Event{ID: "ev-b-" + c.id, SessionID: "sess-" + c.id, Time: c.start.Add(2 * time.Second), Kind: "dtmf", Detail: "1"})
	}
	if err := st.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	now := at(12, 0)
	if _, err := st.Aggregate(ctx, cdrstore.AggregateOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: st, now: now}
	f.api = &API{Store: st, Token: token, Now: func() time.Time { return f.now }}
	mux := http.NewServeMux()
	f.api.Register(mux)
	(&UI{API: f.api}).Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) get(t *testing.T, path string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func (f *fixture) getJSON(t *testing.T, path string, out any) {
	t.Helper()
	code, h, body := f.get(t, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: content type %q", path, ct)
	}
	if err := json.Unmarshal([]byte(body), out); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

func sessions(l CDRList) string {
	var ids []string
	for _, c := range l.CDRs {
		ids = append(ids, strings.TrimPrefix(c.SessionID, "sess-"))
	}
	return strings.Join(ids, ",")
}

func TestDetailsFilters(t *testing.T) {
	f := newFixture(t, "")
	ms := func(tm time.Time) string { return fmt.Sprint(tm.UnixMilli()) }
	cases := []struct {
		path, want string
		total      int
	}{
		{"/ems-rs/HIST/CDRs/RM/details", "c3,c2,c1", 3},
		{"/ems-rs/HIST/CDRs/MCP/details", "c3,c2,c1", 3},
		{"/ems-rs/RT/CDRs/RM/details", "c5,c4", 2},
		{"/ems-rs/RT/CDRs/MCP/details", "c5,c4", 2},
		{"/ems-rs/HIST/CDRs/RM/details?started-from=2025-03-10T09:05:00Z", "c3,c2", 2},
		{"/ems-rs/HIST/CDRs/RM/details?started-to=2025-03-10T09:05:00Z", "c1", 1},
		{"/ems-rs/HIST/CDRs/RM/details?started-from=" + ms(at(9, 1)) + "&started-to=" + ms(at(10, 0)), "c2", 1},
		{"/ems-rs/HIST/CDRs/RM/details?started-from=2025-03-10T10:04:00%2B01:00", "c3,c2", 2}, // 09:04 UTC
		{"/ems-rs/HIST/CDRs/RM/details?ended-from=2025-03-10T09:15:00Z", "c3,c2", 2},
		{"/ems-rs/HIST/CDRs/RM/details?ended-to=2025-03-10T09:15:00Z", "c1", 1},
		{"/ems-rs/HIST/CDRs/RM/details?ended-from=2025-03-10T09:00:00Z&ended-to=2025-03-10T09:20:00.001Z", "c2,c1", 2},
		{"/ems-rs/HIST/CDRs/RM/details?tenant-id=t1", "c3,c2,c1", 3},
		{"/ems-rs/RT/CDRs/RM/details?tenant-id=t1", "", 0},
		{"/ems-rs/RT/CDRs/RM/details?tenant-id=t2", "c5,c4", 2},
		{"/ems-rs/HIST/CDRs/RM/details?app-id=sales", "c3", 1},
		{"/ems-rs/HIST/CDRs/RM/details?dn=5551000", "c2,c1", 2},
		{"/ems-rs/HIST/CDRs/RM/details?remote-uri=sip:555c2@127.0.0.1", "c2", 1},
		{"/ems-rs/HIST/CDRs/RM/details?local-uri=sip:5551001@127.0.0.1", "c3", 1},
		{"/ems-rs/HIST/CDRs/RM/details?session-id=sess-c1", "c1", 1},
		{"/ems-rs/HIST/CDRs/MCP/details?gvp-guid=c2-mcp", "c2", 1},
		{"/ems-rs/HIST/CDRs/RM/details?gvp-guid=c2-mcp", "", 0},
		{"/ems-rs/HIST/CDRs/RM/details?page-size=2", "c3,c2", 3},
		{"/ems-rs/HIST/CDRs/RM/details?page-size=2&page=2", "c1", 3},
		{"/ems-rs/HIST/CDRs/RM/details?page=3", "", 3},
		{"/ems-rs/HIST/CDRs/RM/details?tenant-id=t1&app-id=billing&dn=5551000&started-from=2025-03-10T09:02:00Z", "c2", 1},
	}
	for _, tc := range cases {
		var l CDRList
		f.getJSON(t, tc.path, &l)
		if got := sessions(l); got != tc.want || l.Total != tc.total {
			t.Errorf("%s: sessions %q total %d, want %q total %d", tc.path, got, l.Total, tc.want, tc.total)
		}
	}
	// The record as stored, field by field.
	var l CDRList
	f.getJSON(t, "/ems-rs/HIST/CDRs/RM/details?session-id=sess-c2", &l)
	want := mkCDR("c2", billing.ComponentRM, "t1", "billing", "5551000", at(9, 5), 15*time.Minute)
	if len(l.CDRs) != 1 || l.CDRs[0].ID != want.ID || !l.CDRs[0].End.Equal(want.End) || l.CDRs[0].Duration != want.Duration ||
		l.CDRs[0].TenantName != "Tenant t1" || l.CDRs[0].EndReason != billing.EndCallerHangup || l.Page != 1 || l.PageSize != 100 {
		t.Errorf("record %+v", l)
	}
}

func TestBadParameters(t *testing.T) {
	f := newFixture(t, "")
	cases := []struct{ path, param string }{
		{"/ems-rs/HIST/CDRs/RM/details?started-from=yesterday", "started-from"},
		{"/ems-rs/HIST/CDRs/RM/details?started-to=2025-13-01T00:00:00Z", "started-to"},
		{"/ems-rs/HIST/CDRs/RM/details?ended-from=2025-03-10", "ended-from"},
		{"/ems-rs/HIST/CDRs/RM/details?ended-to=-5", "ended-to"},
		{"/ems-rs/HIST/CDRs/RM/details?started-from=2025-03-10T10:00:00Z&started-to=2025-03-10T09:00:00Z", "started-to"},
		{"/ems-rs/HIST/CDRs/RM/details?page=0", "page"},
		{"/ems-rs/HIST/CDRs/RM/details?page=x", "page"},
		{"/ems-rs/HIST/CDRs/RM/details?page-size=1001", "page-size"},
		{"/ems-rs/HIST/CDRs/RM/details?tenant=t1", "tenant"},
		{"/ems-rs/HIST/CDRs/RM/details?dn=1&dn=2", "dn"},
		{"/ems-rs/HIST/CDRs/MCP/events?started-from=x", "started-from"},
		{"/ems-rs/RT/tenants/usage?component=sbc", "component"},
		{"/ems-rs/HIST/arrivals?interval=7m", "interval"},
		{"/ems-rs/HIST/arrivals?from=2025-03-10T10:00:00Z&to=2025-03-10T09:00:00Z", "to"},
		{"/ems-rs/HIST/arrivals?from=0&to=" + fmt.Sprint(at(0, 0).UnixMilli()) + "&interval=5m", "from"},
		{"/ems-rs/HIST/aggregates/daily?from=soon", "from"},
		{"/ems-rs/HIST/aggregates/daily?period=day", "period"},
	}
	for _, tc := range cases {
		code, _, body := f.get(t, tc.path)
		var e ErrorBody
		if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || e.Parameter != tc.param ||
			!strings.Contains(e.Message, tc.param) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.path, code, body, tc.param)
		}
	}
	// XML errors, unknown reports.
	code, h, body := f.get(t, "/ems-rs/HIST/CDRs/RM/details?page=0", "Accept", "application/xml")
	var e ErrorBody
	if code != 400 || !strings.HasPrefix(h.Get("Content-Type"), "application/xml") || xml.Unmarshal([]byte(body), &e) != nil || e.Parameter != "page" {
		t.Errorf("xml error: %d %s", code, body)
	}
	for _, p := range []string{"/ems-rs/HIST/CDRs/SBC/details", "/ems-rs/HIST/aggregates/yearly", "/ems-rs/nothing"} {
		if code, _, body := f.get(t, p); code != http.StatusNotFound {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
}

func TestEvents(t *testing.T) {
	f := newFixture(t, "")
	var l EventList
	f.getJSON(t, "/ems-rs/HIST/CDRs/MCP/events?session-id=sess-c1", &l)
	if l.Total != 1 || len(l.Sessions) != 1 || l.Sessions[0].SessionID != "sess-c1" || len(l.Sessions[0].Events) != 2 ||
		l.Sessions[0].Events[0].Kind != "prompt" || l.Sessions[0].Events[1].Kind != "dtmf" {
		t.Fatalf("events %+v", l)
	}
	f.getJSON(t, "/ems-rs/HIST/CDRs/MCP/events?tenant-id=t1&page-size=2", &l)
	if l.Total != 3 || len(l.Sessions) != 2 || l.Sessions[0].SessionID != "sess-c3" {
		t.Fatalf("events by tenant %+v", l)
	}
	// In-progress calls are RT: not in the HIST events report.
	f.getJSON(t, "/ems-rs/HIST/CDRs/MCP/events?session-id=sess-c4", &l)
	if l.Total != 0 || len(l.Sessions) != 0 {
		t.Fatalf("events of a call in progress %+v", l)
	}
}

func TestUsageArrivalsAggregates(t *testing.T) {
	f := newFixture(t, "")
	f.now = at(11, 45)
	var u UsageReport
	f.getJSON(t, "/ems-rs/RT/tenants/usage", &u)
	if len(u.Tenants) != 2 || u.Tenants[0].TenantID != "t1" || u.Tenants[0].ArrivalsToday != 3 || u.Tenants[0].PeakToday != 2 ||
		u.Tenants[1].InProgress != 2 || u.Tenants[1].ArrivalsThisHour != 2 || !u.Time.Equal(f.now) {
		t.Errorf("usage %+v", u)
	}
	f.getJSON(t, "/ems-rs/RT/tenants/usage?tenant-id=t2&component=MCP", &u)
	if len(u.Tenants) != 1 || u.Tenants[0].TenantID != "t2" || u.Tenants[0].InProgress != 2 {
		t.Errorf("usage of t2 %+v", u)
	}

	var a ArrivalsReport
	f.getJSON(t, "/ems-rs/HIST/arrivals?interval=1h&from=2025-03-10T00:00:00Z&to=2025-03-10T12:00:00Z", &a)
	got := map[string]string{}
	for _, s := range a.Intervals {
		got[s.Start.Format("15:04")+"/"+s.TenantID+"/"+s.Profile] = fmt.Sprint(s.Arrivals, "/", s.PeakConcurrency)
	}
	want := map[string]string{"09:00/t1/billing": "2/2", "10:00/t1/sales": "1/1", "11:00/t2/support": "2/2"}
	if fmt.Sprint(got) != fmt.Sprint(want) || a.Interval != "1h" {
		t.Errorf("arrivals %v, want %v", got, want)
	}
	// Default window: the last 24 h, 5-minute intervals; filters by tenant and profile.
	f.getJSON(t, "/ems-rs/HIST/arrivals?tenant-id=t1&app-id=billing", &a)
	if a.Interval != "5m" || !a.To.Equal(f.now) || !a.From.Equal(f.now.Add(-24*time.Hour)) || len(a.Intervals) != 4 {
		t.Errorf("5m arrivals %+v", a) // 09:00 (c1), 09:05 (c2), 09:10 (c2 still up), 09:15 (c2 still up)
	}
	f.getJSON(t, "/ems-rs/HIST/arrivals?interval=1d&from="+fmt.Sprint(day.UnixMilli()), &a)
	if len(a.Intervals) != 3 || a.Intervals[0].Arrivals+a.Intervals[1].Arrivals+a.Intervals[2].Arrivals != 5 {
		t.Errorf("daily arrivals %+v", a)
	}

	var ag AggregatesReport
	f.getJSON(t, "/ems-rs/HIST/aggregates/daily", &ag)
	if ag.Period != cdrstore.PeriodDay || len(ag.Aggregates) != 3 {
		t.Fatalf("daily aggregates %+v", ag)
	}
	f.getJSON(t, "/ems-rs/HIST/aggregates/weekly?tenant-id=t1&app-id=billing", &ag)
	if len(ag.Aggregates) != 1 || ag.Aggregates[0].Arrivals != 2 || ag.Aggregates[0].PeakConcurrency != 2 ||
		ag.Aggregates[0].DurationMS != 25*60_000 || !ag.Aggregates[0].Start.Equal(day) {
		t.Errorf("weekly %+v", ag)
	}
	f.getJSON(t, "/ems-rs/HIST/aggregates/monthly?component=mcp&tenant-id=t2", &ag)
	// No mcp aggregation ran in the fixture.
	if len(ag.Aggregates) != 0 {
		t.Errorf("monthly mcp %+v", ag)
	}
	f.getJSON(t, "/ems-rs/HIST/aggregates/month?from=2025-03-01T00:00:00Z&to=2025-04-01T00:00:00Z", &ag)
	if len(ag.Aggregates) != 3 || ag.Aggregates[0].Start.Month() != time.March {
		t.Errorf("monthly %+v", ag)
	}
}

func TestXMLRendering(t *testing.T) {
	f := newFixture(t, "")
	paths := map[string]string{
		"/ems-rs/HIST/CDRs/RM/details?session-id=sess-c1": "cdrs",
		"/ems-rs/RT/CDRs/MCP/details":                     "cdrs",
		"/ems-rs/HIST/CDRs/MCP/events?session-id=sess-c1": "sessions",
		"/ems-rs/RT/tenants/usage":                        "tenants",
		"/ems-rs/HIST/arrivals?interval=1h":               "arrivals",
		"/ems-rs/HIST/aggregates/weekly":                  "aggregates",
	}
	for p, root := range paths {
		for _, accept := range []string{"application/xml", "text/html, application/xml;q=0.9, */*;q=0.8"} {
			code, h, body := f.get(t, p, "Accept", accept)
			if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/xml") || !strings.HasPrefix(body, "<?xml") {
				t.Fatalf("%s: %d %s %s", p, code, h.Get("Content-Type"), body)
			}
			// Well-formed: the whole document decodes token by token.
			d := xml.NewDecoder(strings.NewReader(body))
			first := ""
			for {
				tok, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s: not well-formed: %v\n%s", p, err, body)
				}
				if se, ok := tok.(xml.StartElement); ok && first == "" {
					first = se.Name.Local
				}
			}
			if first != root {
				t.Errorf("%s: root <%s>, want <%s>", p, first, root)
			}
		}
	}
	// The content of a CDR and of events.
	_, _, body := f.get(t, "/ems-rs/HIST/CDRs/RM/details?session-id=sess-c1", "Accept", "application/xml")
	var doc struct {
		Total int `xml:"total,attr"`
		CDRs  []struct {
			RecordID   string `xml:"record-id"`
			SessionID  string `xml:"gvp-session-id"`
			TenantID   string `xml:"tenant-id"`
			End        string `xml:"end"`
			DurationMS int64  `xml:"duration-ms"`
		} `xml:"cdr"`
	}
	if err := xml.Unmarshal([]byte(body), &doc); err != nil || doc.Total != 1 || len(doc.CDRs) != 1 ||
		doc.CDRs[0].RecordID != "c1-rm" || doc.CDRs[0].SessionID != "sess-c1" || doc.CDRs[0].TenantID != "t1" ||
		doc.CDRs[0].End != "2025-03-10T09:10:00Z" || doc.CDRs[0].DurationMS != 600000 {
		t.Errorf("cdr xml %+v %v\n%s", doc, err, body)
	}
	_, _, body = f.get(t, "/ems-rs/HIST/CDRs/MCP/events?session-id=sess-c1", "Accept", "text/xml")
	var ev struct {
		Sessions []struct {
			ID     string `xml:"id,attr"`
			Events []struct {
				Kind   string `xml:"kind,attr"`
				Detail string `xml:",chardata"`
			} `xml:"event"`
		} `xml:"session"`
	}
	if err := xml.Unmarshal([]byte(body), &ev); err != nil || len(ev.Sessions) != 1 || ev.Sessions[0].ID != "sess-c1" ||
		len(ev.Sessions[0].Events) != 2 || ev.Sessions[0].Events[0].Detail != "welcome.wav <&>" {
		t.Errorf("events xml %+v %v\n%s", ev, err, body)
	}
	// JSON wins when it comes first or nothing is asked.
	if _, h, _ := f.get(t, "/ems-rs/RT/tenants/usage", "Accept", "application/json, application/xml"); !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Errorf("content type %q", h.Get("Content-Type"))
	}
}

func TestToken(t *testing.T) {
	f := newFixture(t, "s3cret")
	for _, p := range []string{"/ems-rs/HIST/CDRs/RM/details", "/ems-rs/RT/tenants/usage", "/ems-rs/HIST/arrivals", "/", "/calls"} {
		code, h, _ := f.get(t, p)
		if code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s without token: %d %v", p, code, h)
		}
		if code, _, _ := f.get(t, p, "Authorization", "Bearer wrong"); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d", p, code)
		}
		if code, _, body := f.get(t, p, "Authorization", "Bearer s3cret"); code != http.StatusOK {
			t.Errorf("%s with the token: %d %s", p, code, body)
		}
	}
	// Browsers: HTTP Basic with the token as password.
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/calls", nil)
	req.SetBasicAuth("ops", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("basic auth: %d", resp.StatusCode)
	}
	if _, h, _ := f.get(t, "/calls"); !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("page challenge %q", h.Get("WWW-Authenticate"))
	}
}

func TestParseTime(t *testing.T) {
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2025-03-10T09:00:00Z", at(9, 0), true},
		{"2025-03-10T10:00:00+01:00", at(9, 0), true},
		{"2025-03-10T09:00:00.250Z", at(9, 0).Add(250 * time.Millisecond), true},
		{"1741597200000", at(9, 0), true},
		{"0", time.Unix(0, 0).UTC(), true},
		{"", time.Time{}, false},
		{"-1", time.Time{}, false},
		{"2025-03-10", time.Time{}, false},
		{"2025-03-10 09:00:00", time.Time{}, false},
		{"99999999999999999999", time.Time{}, false},
	}
	for _, tc := range cases {
		got, err := ParseTime(tc.in)
		if (err == nil) != tc.ok || (tc.ok && !got.Equal(tc.want)) {
			t.Errorf("ParseTime(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2025-03-10T09:00:00Z", "1741597200000", "2025-03-10T10:00:00.123456789+01:00", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTime(s)
		if err == nil && tm.Location() != time.UTC {
			t.Fatalf("%q: not UTC", s)
		}
	})
}

// FuzzQuery feeds arbitrary query strings to every report; the API must answer 200, 400 or
// 404, never fail otherwise.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"started-from=2025-03-10T09:00:00Z&page=2", "interval=1h&from=0", "page-size=0", "%zz", "a=b&a=c"} {
		f.Add(s)
	}
	st, err := cdrstore.OpenSQLiteFile(context.Background(), f.TempDir()+"/rs.db")
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	mux := http.NewServeMux()
	(&API{Store: st}).Register(mux)
	paths := []string{"/ems-rs/HIST/CDRs/RM/details", "/ems-rs/HIST/CDRs/MCP/events", "/ems-rs/RT/tenants/usage",
		"/ems-rs/HIST/arrivals", "/ems-rs/HIST/aggregates/daily"}
	f.Fuzz(func(t *testing.T, q string) {
		for _, p := range paths {
			req := httptest.NewRequest(http.MethodGet, "http://rs"+p, nil)
			req.URL.RawQuery = q
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, req)
			if w.Code != 200 && w.Code != 400 && w.Code != 404 {
				t.Fatalf("%s?%s: %d %s", p, q, w.Code, w.Body)
			}
		}
	})
}

// BenchmarkDetails measures one /ems-rs/HIST/CDRs/RM/details page of 100 CDRs out of 10,000,
// filtered by tenant, in JSON and XML, over SQLite.
func BenchmarkDetails(b *testing.B) {
	ctx := context.Background()
	st, err := cdrstore.OpenSQLiteFile(ctx, b.TempDir()+"/rs.db")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var batch cdrstore.Batch
	for i := range 10000 {
		batch.CDRs = append(batch.CDRs, mkCDR(fmt.Sprint("b", i), billing.ComponentRM, fmt.Sprint("t", i%10), "p", "1",
			day.Add(time.Duration(i)*time.Second), time.Minute))
	}
	if err := st.Apply(ctx, batch); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	(&API{Store: st}).Register(mux)
	for _, accept := range []string{"application/json", "application/xml"} {
		b.Run(accept, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "http://rs/ems-rs/HIST/CDRs/RM/details?tenant-id=t3&page=2", nil)
				req.Header.Set("Accept", accept)
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatal(w.Code, w.Body)
				}
			}
		})
	}
}
