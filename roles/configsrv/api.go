package configsrv

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/confmodel"
	"github.com/opengvp/gvp/internal/confstore"
)

// API defaults.
const (
	// DefaultMaxBodyBytes bounds request bodies (an apply of 100,000 DIDs is about 8 MiB of YAML).
	DefaultMaxBodyBytes = 64 << 20
	// DefaultWatchTimeout is how long a watch waits for a change when the request names no timeout.
	DefaultWatchTimeout = 30 * time.Second
	// DefaultMaxWatchTimeout caps the timeout a watch request may ask for. The HTTP server's
	// WriteTimeout must exceed it.
	DefaultMaxWatchTimeout = 5 * time.Minute
	// APIPrefix is the path prefix of every API endpoint.
	APIPrefix = "/api/v1/"
)

type apiOptions struct {
	token           string
	authReads       bool
	log             zerolog.Logger
	reg             prometheus.Registerer
	maxBody         int64
	watchTimeout    time.Duration
	maxWatchTimeout time.Duration
}

// APIOption configures NewAPI.
type APIOption func(*apiOptions)

// WithToken requires `Authorization: Bearer <token>` on every write (PUT, DELETE, apply).
// An empty token (the default) disables authentication.
func WithToken(token string) APIOption { return func(o *apiOptions) { o.token = token } }

// WithAuthenticatedReads requires the token of WithToken on reads and watches too.
func WithAuthenticatedReads() APIOption { return func(o *apiOptions) { o.authReads = true } }

// WithAPILogger sets the logger for server-side failures (default zerolog.Nop()).
func WithAPILogger(l zerolog.Logger) APIOption { return func(o *apiOptions) { o.log = l } }

// WithAPIRegisterer registers the API's metrics with r (default nil: no metrics).
func WithAPIRegisterer(r prometheus.Registerer) APIOption { return func(o *apiOptions) { o.reg = r } }

// WithMaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes).
func WithMaxBodyBytes(n int64) APIOption { return func(o *apiOptions) { o.maxBody = n } }

// WithWatchTimeouts sets the default and the maximum wait of a watch (defaults
// DefaultWatchTimeout and DefaultMaxWatchTimeout).
func WithWatchTimeouts(def, max time.Duration) APIOption {
	return func(o *apiOptions) { o.watchTimeout, o.maxWatchTimeout = def, max }
}

type api struct {
	store    confstore.Store
	o        apiOptions
	requests *prometheus.CounterVec
	watchers prometheus.Gauge
}

// NewAPI returns the handler of configsrv's HTTP/JSON API under /api/v1/ (see API.md): CRUD per
// kind, atomic bulk apply, snapshot and long-poll watch, over store.
func NewAPI(store confstore.Store, opts ...APIOption) http.Handler {
	a := &api{store: store, o: apiOptions{
		log:             zerolog.Nop(),
		maxBody:         DefaultMaxBodyBytes,
		watchTimeout:    DefaultWatchTimeout,
		maxWatchTimeout: DefaultMaxWatchTimeout,
	}}
	for _, f := range opts {
		f(&a.o)
	}
	a.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gvp_configsrv_api_requests_total",
		Help: "API requests by endpoint and HTTP status code.",
	}, []string{"endpoint", "code"})
	a.watchers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gvp_configsrv_api_watchers",
		Help: "Watch requests currently waiting for a change.",
	})
	if a.o.reg != nil {
		a.o.reg.MustRegister(a.requests, a.watchers)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/snapshot", a.wrap("snapshot", false, a.snapshot))
	mux.Handle("GET /api/v1/revision", a.wrap("revision", false, a.revision))
	mux.Handle("GET /api/v1/watch", a.wrap("watch", false, a.watch))
	mux.Handle("POST /api/v1/apply", a.wrap("apply", true, a.apply))
	mux.Handle("GET /api/v1/{kind}", a.wrap("list", false, a.list))
	mux.Handle("GET /api/v1/{kind}/{key...}", a.wrap("get", false, a.get))
	mux.Handle("PUT /api/v1/{kind}/{key...}", a.wrap("put", true, a.put))
	mux.Handle("DELETE /api/v1/{kind}/{key...}", a.wrap("delete", true, a.delete))
	mux.Handle("/", a.wrap("other", false, func(w http.ResponseWriter, r *http.Request) error {
		return httpError(http.StatusNotFound, "no endpoint %s %s", r.Method, r.URL.Path)
	}))
	return mux
}

// apiError is an error with an HTTP status.
type apiError struct {
	status int
	msg    string
	errs   confmodel.ErrorList
}

func (e *apiError) Error() string { return e.msg }

func httpError(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// statusWriter records the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (a *api) wrap(endpoint string, write bool, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() { a.requests.WithLabelValues(endpoint, strconv.Itoa(sw.code)).Inc() }()
		if a.o.token != "" && (write || a.o.authReads) && !a.authorized(r) {
			sw.Header().Set("WWW-Authenticate", `Bearer realm="gvp-configsrv"`)
			writeJSON(sw, http.StatusUnauthorized, confstore.ErrorBody{Error: "missing or wrong bearer token"})
			return
		}
		r.Body = http.MaxBytesReader(sw, r.Body, a.o.maxBody)
		if err := h(sw, r); err != nil {
			a.writeError(sw, r, err)
		}
	})
}

func (a *api) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(h[len(prefix):])), []byte(a.o.token)) == 1
}

func (a *api) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		ae  *apiError
		mbe *http.MaxBytesError
		re  *confstore.ReferencedError
	)
	body := confstore.ErrorBody{Error: err.Error()}
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &ae):
		status, body.Errors = ae.status, ae.errs
	case errors.As(err, &mbe):
		status = http.StatusRequestEntityTooLarge
		body.Error = fmt.Sprintf("request body larger than %d bytes", mbe.Limit)
	case errors.As(err, &re):
		status, body.Errors = http.StatusConflict, re.By
	case errors.Is(err, confmodel.ErrInvalid):
		status = http.StatusUnprocessableEntity
		body.Errors, _ = confmodel.AsErrorList(err)
		body.Error = "configuration rejected: " + firstLine(err.Error())
	case errors.Is(err, confstore.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, confstore.ErrClosed):
		status = http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		return // the client went away
	}
	if status >= 500 {
		a.o.log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("configuration API request failed")
	}
	writeJSON(w, status, body)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " (and more)"
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client may be gone; nothing to do about it
}

func (a *api) kind(r *http.Request) (confmodel.Kind, error) {
	k, err := confmodel.ParseKind(r.PathValue("kind"))
	if err != nil {
		return "", httpError(http.StatusNotFound, "%v", err)
	}
	return k, nil
}

func (a *api) list(w http.ResponseWriter, r *http.Request) error {
	k, err := a.kind(r)
	if err != nil {
		return err
	}
	objs, rev, err := a.store.List(r.Context(), k)
	if err != nil {
		return err
	}
	tenant, pool := r.URL.Query().Get("tenant"), r.URL.Query().Get("pool")
	out := confstore.ObjectList{Revision: rev, Items: []json.RawMessage{}}
	for _, o := range objs {
		if tenant != "" && !inTenant(o, tenant) || pool != "" && !inPool(o, pool) {
			continue
		}
		b, err := confmodel.MarshalDocumentJSON(o)
		if err != nil {
			return err
		}
		out.Items = append(out.Items, b)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func inTenant(o confmodel.Object, t string) bool {
	switch v := o.(type) {
	case *confmodel.IVRProfile:
		return v.Tenant == t
	case *confmodel.DID:
		return v.Tenant == t
	case *confmodel.Tenant:
		return v.Parent == t
	}
	return false
}

func inPool(o confmodel.Object, p string) bool {
	switch v := o.(type) {
	case *confmodel.MCP:
		return v.Pool == p
	case *confmodel.IVRProfile:
		return v.Pool == p
	}
	return false
}

func (a *api) get(w http.ResponseWriter, r *http.Request) error {
	k, err := a.kind(r)
	if err != nil {
		return err
	}
	o, err := a.store.Get(r.Context(), k, r.PathValue("key"))
	if err != nil {
		return err
	}
	b, err := confmodel.MarshalDocumentJSON(o)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, json.RawMessage(b))
	return nil
}

func dryRun(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("dryRun")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, httpError(http.StatusBadRequest, "invalid dryRun %q: want true or false", v)
	}
	return b, nil
}

func (a *api) put(w http.ResponseWriter, r *http.Request) error {
	k, err := a.kind(r)
	if err != nil {
		return err
	}
	dry, err := dryRun(r)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	o, err := confmodel.DecodeObjectAt(k, r.PathValue("key"), data)
	if err != nil {
		return err
	}
	res, err := a.store.Apply(r.Context(), []confstore.Change{confstore.Put(o)}, confstore.ApplyOptions{DryRun: dry})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res.Objects[0].Outcome == confstore.OutcomeCreated && !dry {
		status = http.StatusCreated
	}
	writeJSON(w, status, res)
	return nil
}

func (a *api) delete(w http.ResponseWriter, r *http.Request) error {
	k, err := a.kind(r)
	if err != nil {
		return err
	}
	dry, err := dryRun(r)
	if err != nil {
		return err
	}
	res, err := a.store.Apply(r.Context(), []confstore.Change{confstore.Delete(k, r.PathValue("key"))}, confstore.ApplyOptions{DryRun: dry})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (a *api) apply(w http.ResponseWriter, r *http.Request) error {
	dry, err := dryRun(r)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	docs, err := confmodel.DecodeDocuments(data)
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return httpError(http.StatusBadRequest, "no documents in the request body")
	}
	changes := make([]confstore.Change, len(docs))
	for i, d := range docs {
		changes[i] = confstore.Change{Op: confstore.OpPut, Object: d.Object, Document: d.Index}
	}
	res, err := a.store.Apply(r.Context(), changes, confstore.ApplyOptions{DryRun: dry})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (a *api) snapshot(w http.ResponseWriter, r *http.Request) error {
	objs, rev, err := a.store.Snapshot(r.Context())
	if err != nil {
		return err
	}
	body := confstore.SnapshotBody{Revision: rev}
	for _, o := range objs {
		body.Objects.Add(o)
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

func (a *api) revision(w http.ResponseWriter, r *http.Request) error {
	rev, err := a.store.Revision(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, confstore.RevisionBody{Revision: rev})
	return nil
}

func (a *api) watchTimeout(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("timeout")
	if v == "" {
		return a.o.watchTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseFloat(v, 64)
		if nerr != nil {
			return 0, httpError(http.StatusBadRequest, "invalid timeout %q: want a duration like 30s or a number of seconds", v)
		}
		d = time.Duration(n * float64(time.Second))
	}
	if d < 0 {
		return 0, httpError(http.StatusBadRequest, "invalid timeout %q: negative", v)
	}
	return min(d, a.o.maxWatchTimeout), nil
}

func (a *api) watch(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query().Get("after")
	after, err := strconv.ParseInt(v, 10, 64)
	if err != nil || after < 0 {
		return httpError(http.StatusBadRequest, "invalid after %q: want a revision (0 or more)", v)
	}
	timeout, err := a.watchTimeout(r)
	if err != nil {
		return err
	}
	cs, err := a.store.Changes(r.Context(), after)
	if err != nil {
		return err
	}
	if !cs.Reset && len(cs.Events) == 0 && timeout > 0 {
		a.watchers.Inc()
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		_, werr := a.store.WaitRevision(ctx, after)
		cancel()
		a.watchers.Dec()
		switch {
		case werr == nil:
			if cs, err = a.store.Changes(r.Context(), after); err != nil {
				return err
			}
		case r.Context().Err() != nil:
			return r.Context().Err()
		case !errors.Is(werr, context.DeadlineExceeded):
			return werr
		}
	}
	body := confstore.WatchBody{After: cs.After, Revision: cs.Revision, Reset: cs.Reset, Events: make([]confstore.WatchEvent, 0, len(cs.Events))}
	for _, e := range cs.Events {
		we := confstore.WatchEvent{Revision: e.Revision, Kind: e.Kind, Name: e.Name, Op: e.Op}
		if e.Object != nil {
			if we.Object, err = confmodel.MarshalDocumentJSON(e.Object); err != nil {
				return err
			}
		}
		body.Events = append(body.Events, we)
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}
