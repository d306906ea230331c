// Package confclient is the Go client of configsrv's HTTP API (roles/configsrv/API.md): typed
// CRUD, bulk apply, snapshot and watch in Client, and Cache, which keeps a validated
// confmodel.Snapshot current through the watch for the roles that route calls with it.
package confclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/opengvp/gvp/internal/confmodel"
	"github.com/opengvp/gvp/internal/confstore"
)

// Client defaults.
const (
	// DefaultServer is configsrv's default base URL.
	DefaultServer = "http://127.0.0.1:8888"
	// DefaultRequestTimeout bounds each request but watches, when the context has no deadline.
	DefaultRequestTimeout = 30 * time.Second
	// watchGrace is added to a watch's server-side timeout for the client-side deadline.
	watchGrace = 10 * time.Second
	// maxErrorBody bounds how much of an error response is read.
	maxErrorBody = 1 << 20
)

// Client talks to one configsrv. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	token   string
	hc      *http.Client
	timeout time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends `Authorization: Bearer token` with every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient sets the HTTP client (default: a client on http.DefaultTransport, no timeout:
// request deadlines come from contexts).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithRequestTimeout bounds each request but watches (default DefaultRequestTimeout).
func WithRequestTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// New returns a client of the configsrv at server, a base URL such as http://127.0.0.1:8888.
func New(server string, opts ...Option) (*Client, error) {
	if server == "" {
		server = DefaultServer
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid configsrv URL %q: want http(s)://host:port", server)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{base: u, hc: &http.Client{}, timeout: DefaultRequestTimeout}
	for _, f := range opts {
		f(c)
	}
	return c, nil
}

// Server returns the base URL.
func (c *Client) Server() string { return c.base.String() }

// APIError is an error answered by configsrv.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Body is the decoded error body.
	Body confstore.ErrorBody
}

// Error returns the server's message and, one per line, each detailed error.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "configsrv: %s (HTTP %d)", e.Body.Error, e.Status)
	for _, fe := range e.Body.Errors {
		b.WriteString("\n  ")
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Is maps statuses to the store's errors: 404 to confstore.ErrNotFound, 409 to
// confstore.ErrReferenced, 422 to confmodel.ErrInvalid.
func (e *APIError) Is(target error) bool {
	switch e.Status {
	case http.StatusNotFound:
		return target == confstore.ErrNotFound
	case http.StatusConflict:
		return target == confstore.ErrReferenced
	case http.StatusUnprocessableEntity:
		return target == confmodel.ErrInvalid
	}
	return false
}

// path builds /api/v1/ followed by the escaped segments (each may contain '/', kept as a
// separator).
func (c *Client) path(parts ...string) string {
	var b strings.Builder
	b.WriteString(c.base.Path)
	b.WriteString("/api/v1")
	for _, p := range parts {
		for _, seg := range strings.Split(p, "/") {
			b.WriteByte('/')
			b.WriteString(url.PathEscape(seg))
		}
	}
	return b.String()
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	u := *c.base
	u.Path, _ = url.PathUnescape(path)
	u.RawPath = path
	u.RawQuery = q.Encode()
	target := u.String()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		ae := &APIError{Status: resp.StatusCode}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if json.Unmarshal(b, &ae.Body) != nil || ae.Body.Error == "" {
			ae.Body.Error = strings.TrimSpace(string(b))
			if ae.Body.Error == "" {
				ae.Body.Error = http.StatusText(resp.StatusCode)
			}
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// Revision returns configsrv's current revision.
func (c *Client) Revision(ctx context.Context) (int64, error) {
	var rb confstore.RevisionBody
	err := c.do(ctx, http.MethodGet, c.path("revision"), nil, nil, &rb)
	return rb.Revision, err
}

// Get returns the object of kind k and key key ("name", "tenant/name" for profiles,
// "tenant/pattern" for DIDs). A missing object gives an error matching confstore.ErrNotFound.
func (c *Client) Get(ctx context.Context, k confmodel.Kind, key string) (confmodel.Object, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, c.path(k.Plural(), key), nil, nil, &raw); err != nil {
		return nil, err
	}
	o, err := confmodel.DecodeObject(k, raw)
	if err != nil {
		return nil, fmt.Errorf("decode %s %q: %w", k, key, err)
	}
	return o, nil
}

// GetAs is Get for a statically known type: GetAs[*confmodel.Pool](ctx, c, "MCP_LRG").
func GetAs[T confmodel.Object](ctx context.Context, c *Client, key string) (T, error) {
	var zero T
	o, err := c.Get(ctx, zero.Kind(), key)
	if err != nil {
		return zero, err
	}
	t, ok := o.(T)
	if !ok {
		return zero, fmt.Errorf("%s %q: unexpected type %T", zero.Kind(), key, o)
	}
	return t, nil
}

// ListFilter narrows List: Tenant keeps profiles and DIDs of that tenant (and tenants whose
// parent it is); Pool keeps MCPs and profiles of that pool.
type ListFilter struct {
	Tenant string
	Pool   string
}

// List returns the objects of kind k matching f, sorted by key, and the revision.
func (c *Client) List(ctx context.Context, k confmodel.Kind, f ListFilter) ([]confmodel.Object, int64, error) {
	q := url.Values{}
	if f.Tenant != "" {
		q.Set("tenant", f.Tenant)
	}
	if f.Pool != "" {
		q.Set("pool", f.Pool)
	}
	var ol confstore.ObjectList
	if err := c.do(ctx, http.MethodGet, c.path(k.Plural()), q, nil, &ol); err != nil {
		return nil, 0, err
	}
	out := make([]confmodel.Object, 0, len(ol.Items))
	for _, raw := range ol.Items {
		o, err := confmodel.DecodeObject(k, raw)
		if err != nil {
			return nil, 0, fmt.Errorf("decode %s list: %w", k, err)
		}
		out = append(out, o)
	}
	return out, ol.Revision, nil
}

func dryRunQuery(dry bool) url.Values {
	if !dry {
		return nil
	}
	return url.Values{"dryRun": {"true"}}
}

// Put creates or replaces o. With dryRun the server validates and reports without writing.
func (c *Client) Put(ctx context.Context, o confmodel.Object, dryRun bool) (*confstore.Result, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", confmodel.RefOf(o), err)
	}
	var res confstore.Result
	if err := c.do(ctx, http.MethodPut, c.path(o.Kind().Plural(), o.Key()), dryRunQuery(dryRun), b, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Delete deletes the object of kind k and key key.
func (c *Client) Delete(ctx context.Context, k confmodel.Kind, key string, dryRun bool) (*confstore.Result, error) {
	var res confstore.Result
	if err := c.do(ctx, http.MethodDelete, c.path(k.Plural(), key), dryRunQuery(dryRun), nil, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Apply sends documents (multi-document YAML or JSON) to be applied atomically.
func (c *Client) Apply(ctx context.Context, documents []byte, dryRun bool) (*confstore.Result, error) {
	var res confstore.Result
	if err := c.do(ctx, http.MethodPost, c.path("apply"), dryRunQuery(dryRun), documents, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// ApplyObjects applies objs atomically.
func (c *Client) ApplyObjects(ctx context.Context, objs []confmodel.Object, dryRun bool) (*confstore.Result, error) {
	var buf bytes.Buffer
	if err := confmodel.EncodeDocuments(&buf, objs, confmodel.FormatJSON); err != nil {
		return nil, err
	}
	return c.Apply(ctx, buf.Bytes(), dryRun)
}

// SnapshotObjects returns every object and the revision.
func (c *Client) SnapshotObjects(ctx context.Context) ([]confmodel.Object, int64, error) {
	var sb confstore.SnapshotBody
	if err := c.do(ctx, http.MethodGet, c.path("snapshot"), nil, nil, &sb); err != nil {
		return nil, 0, err
	}
	return sb.Objects.Objects(), sb.Revision, nil
}

// Snapshot returns the whole configuration as a validated, indexed snapshot.
func (c *Client) Snapshot(ctx context.Context) (*confmodel.Snapshot, error) {
	objs, rev, err := c.SnapshotObjects(ctx)
	if err != nil {
		return nil, err
	}
	s, err := confmodel.NewSnapshot(rev, objs)
	if err != nil {
		return nil, fmt.Errorf("snapshot at revision %d: %w", rev, err)
	}
	return s, nil
}

// Watch waits up to timeout for changes after revision after and returns them (no event when
// the timeout passed first; Reset when the client must reload the snapshot).
func (c *Client) Watch(ctx context.Context, after int64, timeout time.Duration) (*confstore.WatchBody, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout+watchGrace)
	defer cancel()
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "timeout": {timeout.String()}}
	var wb confstore.WatchBody
	if err := c.do(ctx, http.MethodGet, c.path("watch"), q, nil, &wb); err != nil {
		return nil, err
	}
	return &wb, nil
}

// IsUnavailable reports whether err means configsrv could not be reached or answered 5xx,
// as opposed to a rejection of the request.
func IsUnavailable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500
	}
	return err != nil
}
