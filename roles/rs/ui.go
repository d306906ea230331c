package rs

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/cdrstore"
)

// Web page defaults.
const (
	// LiveRefresh is how often the page reloads the calls in progress, in seconds.
	LiveRefresh = 5
	// uiLiveCalls is the most calls in progress listed on the page.
	uiLiveCalls = 50
	// uiPageSize is the page size of the CDR search.
	uiPageSize = 50
	// uiSeries is the most tenant/profile lines drawn on the peak chart.
	uiSeries = 6
)

// UI is rs's built-in web page: calls in progress (refreshed every LiveRefresh seconds),
// arrivals and peak concurrency per hour over the last day as server-rendered SVG charts, a
// CDR search, and a per-call view with its events. Plain HTML, one small inline script, no
// external assets.
type UI struct {
	API *API
	// Ready is shown in the page header.
	Ready func() error
}

// Register adds the page's routes to mux: /, /ui/live, /calls and /calls/{session}.
func (u *UI) Register(mux *http.ServeMux) {
	mux.Handle("GET /{$}", u.API.auth(http.HandlerFunc(u.home), true))
	mux.Handle("GET /ui/live", u.API.auth(http.HandlerFunc(u.live), true))
	mux.Handle("GET /calls", u.API.auth(http.HandlerFunc(u.calls), true))
	mux.Handle("GET /calls/{session}", u.API.auth(http.HandlerFunc(u.call), true))
}

var uiFuncs = template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"dur":   func(d time.Duration) string { return d.Round(time.Second).String() },
	"since": func(now, t time.Time) string { return now.Sub(t).Round(time.Second).String() },
	"esc":   url.PathEscape,
}

var uiTemplates = template.Must(template.New("").Funcs(uiFuncs).Parse(uiTemplateText))

type livePage struct {
	Now     time.Time
	Calls   []billing.CDR
	Total   int
	Tenants []cdrstore.TenantUsage
}

type homePage struct {
	Title, Status string
	Live          livePage
	Arrivals      chart
	Peaks         chart
	Refresh       int
	Tenant        string
}

type searchPage struct {
	Title, Status string
	Form          url.Values
	Page          cdrstore.CDRPage
	Error         string
	Prev, Next    string
}

type callPage struct {
	Title, Status string
	SessionID     string
	CDRs          []billing.CDR
	Events        []billing.Event
}

func (u *UI) status() string {
	if u.Ready == nil {
		return "ready"
	}
	if err := u.Ready(); err != nil {
		return "not ready: " + err.Error()
	}
	return "ready"
}

func (u *UI) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:")
	if err := uiTemplates.ExecuteTemplate(w, name, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func (u *UI) loadLive(ctx context.Context, now time.Time) (livePage, error) {
	lp := livePage{Now: now}
	page, err := u.API.Store.CDRs(ctx, cdrstore.CDRQuery{Component: billing.ComponentRM, State: billing.StateInProgress, PageSize: uiLiveCalls})
	if err != nil {
		return lp, err
	}
	lp.Calls, lp.Total = page.CDRs, page.Total
	lp.Tenants, err = u.API.Store.TenantUsage(ctx, cdrstore.UsageQuery{Now: now, Location: u.API.loc()})
	return lp, err
}

func (u *UI) live(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	lp, err := u.loadLive(ctx, u.API.now())
	if err != nil {
		http.Error(w, "database unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	u.render(w, "live", lp)
}

func (u *UI) home(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	now := u.API.now()
	tenant := r.URL.Query().Get("tenant-id")
	lp, err := u.loadLive(ctx, now)
	if err != nil {
		http.Error(w, "database unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	to := now.UTC().Truncate(time.Hour).Add(time.Hour)
	from := to.Add(-24 * time.Hour)
	st, err := u.API.Store.Arrivals(ctx, cdrstore.IntervalQuery{From: from, To: to, Interval: time.Hour, TenantID: tenant, Location: u.API.loc()})
	if err != nil {
		http.Error(w, "database unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	arr, peaks := dayCharts(st, from, to)
	u.render(w, "home", homePage{Title: "Live", Status: u.status(), Live: lp, Arrivals: arr, Peaks: peaks,
		Refresh: LiveRefresh, Tenant: tenant})
}

func (u *UI) calls(w http.ResponseWriter, r *http.Request) {
	sp := searchPage{Title: "Calls", Status: u.status(), Form: r.URL.Query()}
	v, perr := query(r, append([]string{"component", "state"}, cdrParams...)...)
	var q cdrstore.CDRQuery
	if perr == nil {
		q, perr = cdrQuery(v)
	}
	if perr == nil {
		switch v.Get("state") {
		case "", "all":
		case "in_progress", "completed":
			q.State = billing.State(v.Get("state"))
		default:
			perr = badParam("state", "want in_progress, completed or all")
		}
	}
	if perr == nil && v.Get("component") != "" && v.Get("component") != "all" {
		q.Component, perr = componentParam(v)
	}
	if perr != nil {
		sp.Error = perr.Error()
		w.WriteHeader(http.StatusBadRequest)
		u.render(w, "calls", sp)
		return
	}
	if q.PageSize == 0 {
		q.PageSize = uiPageSize
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	page, err := u.API.Store.CDRs(ctx, q)
	if err != nil {
		sp.Error = err.Error()
		w.WriteHeader(http.StatusServiceUnavailable)
		u.render(w, "calls", sp)
		return
	}
	sp.Page = page
	link := func(p int) string {
		nv := url.Values{}
		for k, vs := range v {
			nv[k] = vs
		}
		nv.Set("page", strconv.Itoa(p))
		return "/calls?" + nv.Encode()
	}
	if page.Page > 1 {
		sp.Prev = link(page.Page - 1)
	}
	if page.Page*page.PageSize < page.Total {
		sp.Next = link(page.Page + 1)
	}
	u.render(w, "calls", sp)
}

func (u *UI) call(w http.ResponseWriter, r *http.Request) {
	sid := r.PathValue("session")
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	page, err := u.API.Store.CDRs(ctx, cdrstore.CDRQuery{SessionID: sid})
	if err != nil {
		http.Error(w, "database unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	evs, err := u.API.Store.Events(ctx, sid)
	if err != nil {
		http.Error(w, "database unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if len(page.CDRs) == 0 && len(evs) == 0 {
		w.WriteHeader(http.StatusNotFound)
	}
	u.render(w, "call", callPage{Title: "Call " + sid, Status: u.status(), SessionID: sid, CDRs: page.CDRs, Events: evs})
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH   = 1160, 200
	chartLeft        = 40
	chartTop, chartB = 10, 24
)

// chart is a server-rendered SVG chart: bars, or lines (one per series).
type chart struct {
	W, H, Left, Top, Bottom int
	Max                     int
	Bars                    []bar
	Lines                   []series
	Ticks                   []tick
	GridY                   []tick
}

type bar struct {
	X, Y, W, H float64
	Title      string
}

type series struct {
	Name, Color, Points string
}

type tick struct {
	X, Y  float64
	Label string
}

var seriesColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// dayCharts builds the arrivals (bars, all tenants and profiles summed) and peak concurrency
// (one line per tenant/profile) charts of the hours in [from, to).
func dayCharts(st []cdrstore.IntervalStat, from, to time.Time) (chart, chart) {
	n := int(to.Sub(from) / time.Hour)
	arrivals := make([]int, n)
	type key struct{ tenant, profile string }
	peaks := map[key][]int{}
	totals := map[key]int{}
	for _, s := range st {
		i := int(s.Start.Sub(from) / time.Hour)
		if i < 0 || i >= n {
			continue
		}
		arrivals[i] += s.Arrivals
		k := key{s.TenantID, s.Profile}
		if peaks[k] == nil {
			peaks[k] = make([]int, n)
		}
		peaks[k][i] = s.PeakConcurrency
		totals[k] += s.Arrivals + s.PeakConcurrency
	}
	base := func(maxV int) chart {
		c := chart{W: chartW + chartLeft + 10, H: chartH + chartTop + chartB, Left: chartLeft, Top: chartTop, Bottom: chartTop + chartH, Max: max(maxV, 1)}
		step := float64(chartW) / float64(n)
		for i := 0; i < n; i += 3 {
			c.Ticks = append(c.Ticks, tick{X: chartLeft + float64(i)*step, Y: float64(chartTop + chartH + 16),
				Label: from.Add(time.Duration(i) * time.Hour).UTC().Format("15:04")})
		}
		for _, f := range []float64{0, 0.5, 1} {
			c.GridY = append(c.GridY, tick{X: chartLeft - 6, Y: chartTop + chartH - f*chartH,
				Label: strconv.FormatFloat(f*float64(c.Max), 'f', -1, 64)})
		}
		return c
	}
	maxA := 0
	for _, a := range arrivals {
		maxA = max(maxA, a)
	}
	ac := base(maxA)
	step := float64(chartW) / float64(n)
	for i, a := range arrivals {
		h := float64(a) / float64(ac.Max) * chartH
		ac.Bars = append(ac.Bars, bar{X: chartLeft + float64(i)*step + 1, Y: chartTop + chartH - h, W: step - 2, H: h,
			Title: fmt.Sprintf("%s: %d arrivals", from.Add(time.Duration(i)*time.Hour).UTC().Format("15:04"), a)})
	}
	keys := make([]key, 0, len(peaks))
	maxP := 0
	for k, ps := range peaks {
		keys = append(keys, k)
		for _, p := range ps {
			maxP = max(maxP, p)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if totals[keys[i]] != totals[keys[j]] {
			return totals[keys[i]] > totals[keys[j]]
		}
		return keys[i].tenant+"/"+keys[i].profile < keys[j].tenant+"/"+keys[j].profile
	})
	if len(keys) > uiSeries {
		keys = keys[:uiSeries]
	}
	pc := base(maxP)
	for si, k := range keys {
		pts := ""
		for i, p := range peaks[k] {
			x := chartLeft + (float64(i)+0.5)*step
			y := chartTop + chartH - float64(p)/float64(pc.Max)*chartH
			pts += fmt.Sprintf("%.1f,%.1f ", x, y)
		}
		name := k.tenant
		if k.profile != "" {
			name += " / " + k.profile
		}
		pc.Lines = append(pc.Lines, series{Name: name, Color: seriesColors[si%len(seriesColors)], Points: pts})
	}
	return ac, pc
}

const uiTemplateText = `
{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gvp rs — {{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#243447;color:#fff;padding:8px 16px;display:flex;gap:24px;align-items:center}
header a{color:#cfe3ff;text-decoration:none}header b{font-size:16px}
.status{margin-left:auto;font-size:12px}
main{padding:12px 16px}
section{background:#fff;border:1px solid #dde;border-radius:4px;padding:8px 12px;margin-bottom:12px}
h2{font-size:15px;margin:4px 0 8px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #eee;font-size:13px}
th{background:#f0f2f5}
form.filters{display:flex;flex-wrap:wrap;gap:6px 12px;align-items:end}
form.filters label{display:flex;flex-direction:column;font-size:12px}
.err{color:#b00}.muted{color:#777}
svg text{font-size:11px;fill:#555}
.legend span{display:inline-block;margin-right:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
</style></head><body>
<header><b>gvp rs</b><a href="/">Live</a><a href="/calls">Calls</a><span class="status" id="status">{{.Status}}</span></header>
<main>{{end}}

{{define "foot"}}</main></body></html>{{end}}

{{define "live"}}<div id="live-data">
<h2>Calls in progress: {{.Total}}</h2>
{{if .Calls}}<table><tr><th>started</th><th>up for</th><th>tenant</th><th>profile</th><th>DNIS</th><th>ANI</th><th>session</th></tr>
{{range .Calls}}<tr><td>{{ts .Start}}</td><td>{{since $.Now .Start}}</td><td>{{.TenantName}} ({{.TenantID}})</td><td>{{.Profile}}</td><td>{{.DNIS}}</td><td>{{.ANI}}</td><td><a href="/calls/{{esc .SessionID}}">{{.SessionID}}</a></td></tr>
{{end}}</table>{{else}}<p class="muted">No call in progress.</p>{{end}}
<h2>Tenants today</h2>
{{if .Tenants}}<table><tr><th>tenant</th><th>in progress</th><th>arrivals this hour</th><th>arrivals today</th><th>peak today</th></tr>
{{range .Tenants}}<tr><td>{{.TenantName}} ({{.TenantID}})</td><td>{{.InProgress}}</td><td>{{.ArrivalsThisHour}}</td><td>{{.ArrivalsToday}}</td><td>{{.PeakToday}}</td></tr>
{{end}}</table>{{else}}<p class="muted">No traffic today.</p>{{end}}
<p class="muted">Updated {{ts .Now}} UTC</p></div>{{end}}

{{define "chart"}}<svg role="img" width="100%" viewBox="0 0 {{.W}} {{.H}}" xmlns="http://www.w3.org/2000/svg">
{{range .GridY}}<line x1="{{$.Left}}" x2="{{$.W}}" y1="{{.Y}}" y2="{{.Y}}" stroke="#e5e5e5"/><text x="{{.X}}" y="{{.Y}}" text-anchor="end" dy="4">{{.Label}}</text>
{{end}}{{range .Bars}}<rect x="{{printf "%.1f" .X}}" y="{{printf "%.1f" .Y}}" width="{{printf "%.1f" .W}}" height="{{printf "%.1f" .H}}" fill="#4a7fb5"><title>{{.Title}}</title></rect>
{{end}}{{range .Lines}}<polyline fill="none" stroke="{{.Color}}" stroke-width="2" points="{{.Points}}"><title>{{.Name}}</title></polyline>
{{end}}{{range .Ticks}}<text x="{{.X}}" y="{{.Y}}">{{.Label}}</text>
{{end}}<line x1="{{.Left}}" x2="{{.W}}" y1="{{.Bottom}}" y2="{{.Bottom}}" stroke="#999"/></svg>{{end}}

{{define "home"}}{{template "head" .}}
<section id="live">{{template "live" .Live}}</section>
<section><h2>Arrivals per hour, last 24 hours (UTC){{if .Tenant}}, tenant {{.Tenant}}{{end}}</h2>
<form class="filters" method="get" action="/"><label>tenant-id<input name="tenant-id" value="{{.Tenant}}"></label><button>Show</button></form>
{{template "chart" .Arrivals}}</section>
<section><h2>Peak concurrency per hour, by tenant / profile</h2>
{{template "chart" .Peaks}}
<p class="legend">{{range .Peaks.Lines}}<span><i style="background:{{.Color}}"></i>{{.Name}}</span>{{else}}<span class="muted">No traffic in the last 24 hours.</span>{{end}}</p></section>
<script>
// Reload the calls in progress every {{.Refresh}} s.
setInterval(function(){
  fetch("/ui/live",{credentials:"same-origin"}).then(function(r){if(r.ok)return r.text();throw r.status})
    .then(function(h){document.getElementById("live").innerHTML=h})
    .catch(function(e){document.getElementById("status").textContent="refresh failed: "+e});
},{{.Refresh}}*1000);
</script>
{{template "foot"}}{{end}}

{{define "calls"}}{{template "head" .}}
<section><h2>Search CDRs</h2>
<form class="filters" method="get" action="/calls">
<label>component<select name="component"><option value="all">all</option><option value="rm" {{if eq (.Form.Get "component") "rm"}}selected{{end}}>RM</option><option value="mcp" {{if eq (.Form.Get "component") "mcp"}}selected{{end}}>MCP</option></select></label>
<label>state<select name="state"><option value="all">all</option><option value="in_progress" {{if eq (.Form.Get "state") "in_progress"}}selected{{end}}>in progress</option><option value="completed" {{if eq (.Form.Get "state") "completed"}}selected{{end}}>completed</option></select></label>
<label>started-from<input name="started-from" value="{{.Form.Get "started-from"}}" placeholder="2025-03-10T09:00:00Z"></label>
<label>started-to<input name="started-to" value="{{.Form.Get "started-to"}}"></label>
<label>ended-from<input name="ended-from" value="{{.Form.Get "ended-from"}}"></label>
<label>ended-to<input name="ended-to" value="{{.Form.Get "ended-to"}}"></label>
<label>tenant-id<input name="tenant-id" value="{{.Form.Get "tenant-id"}}"></label>
<label>app-id<input name="app-id" value="{{.Form.Get "app-id"}}"></label>
<label>dn<input name="dn" value="{{.Form.Get "dn"}}"></label>
<label>remote-uri<input name="remote-uri" value="{{.Form.Get "remote-uri"}}"></label>
<label>local-uri<input name="local-uri" value="{{.Form.Get "local-uri"}}"></label>
<label>session-id<input name="session-id" value="{{.Form.Get "session-id"}}"></label>
<label>gvp-guid<input name="gvp-guid" value="{{.Form.Get "gvp-guid"}}"></label>
<button>Search</button></form></section>
<section>{{if .Error}}<p class="err">{{.Error}}</p>{{else}}
<h2>{{.Page.Total}} CDRs{{if .Page.Total}}, page {{.Page.Page}}{{end}}</h2>
{{if .Page.CDRs}}<table><tr><th>start</th><th>end</th><th>duration</th><th>component</th><th>state</th><th>tenant</th><th>profile</th><th>DNIS</th><th>ANI</th><th>end reason</th><th>session</th></tr>
{{range .Page.CDRs}}<tr><td>{{ts .Start}}</td><td>{{ts .End}}</td><td>{{if .Duration}}{{dur .Duration}}{{end}}</td><td>{{.Component}} {{.ComponentName}}</td><td>{{.State}}</td><td>{{.TenantName}} ({{.TenantID}})</td><td>{{.Profile}}</td><td>{{.DNIS}}</td><td>{{.ANI}}</td><td>{{.EndReason}}{{if .EndCode}} {{.EndCode}}{{end}}</td><td><a href="/calls/{{esc .SessionID}}">{{.SessionID}}</a></td></tr>
{{end}}</table>{{end}}
<p>{{if .Prev}}<a href="{{.Prev}}">&larr; newer</a>{{end}} {{if .Next}}<a href="{{.Next}}">older &rarr;</a>{{end}}</p>{{end}}</section>
{{template "foot"}}{{end}}

{{define "call"}}{{template "head" .}}
<section><h2>Call {{.SessionID}}</h2>
{{if .CDRs}}<table><tr><th>component</th><th>state</th><th>tenant</th><th>profile</th><th>DNIS</th><th>ANI</th><th>local URI</th><th>remote URI</th><th>MCP</th><th>start</th><th>answer</th><th>end</th><th>duration</th><th>end reason</th><th>record id</th></tr>
{{range .CDRs}}<tr><td>{{.Component}} {{.ComponentName}}</td><td>{{.State}}</td><td>{{.TenantName}} ({{.TenantID}})</td><td>{{.Profile}}</td><td>{{.DNIS}}</td><td>{{.ANI}}</td><td>{{.LocalURI}}</td><td>{{.RemoteURI}}</td><td>{{.MCP}}</td><td>{{ts .Start}}</td><td>{{ts .Answer}}</td><td>{{ts .End}}</td><td>{{if .Duration}}{{dur .Duration}}{{end}}</td><td>{{.EndReason}}{{if .EndDetail}}: {{.EndDetail}}{{end}}{{if .EndCode}} {{.EndCode}}{{end}}</td><td>{{.ID}}</td></tr>
{{end}}</table>{{else}}<p class="muted">No CDR for this session.</p>{{end}}</section>
<section><h2>Events ({{len .Events}})</h2>
{{if .Events}}<table><tr><th>time</th><th>kind</th><th>detail</th></tr>
{{range .Events}}<tr><td>{{ts .Time}}</td><td>{{.Kind}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>{{else}}<p class="muted">No event for this session.</p>{{end}}</section>
{{template "foot"}}{{end}}
`
