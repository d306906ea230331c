// Package cdrstore is the reporting server's storage of billing records:
// idempotent, batched storage of CDRs and call events in SQLite (embedded)
// or PostgreSQL (production) behind one Store interface, the queries the
// reporting web services need, and the Consumer that moves records from the
// broker into the store with at-least-once delivery.
package cdrstore

import (
	"context"
	"errors"
	"time"

	"github.com/opengvp/gvp/internal/billing"
)

// Paging defaults of CDRQuery.
const (
	// DefaultPageSize is the page size when CDRQuery.PageSize is 0.
	DefaultPageSize = 100
	// MaxPageSize caps CDRQuery.PageSize.
	MaxPageSize = 1000
)

// ErrBadQuery wraps invalid query parameters.
var ErrBadQuery = errors.New("invalid query")

// Store keeps CDRs and call events. Every method is safe for concurrent use.
type Store interface {
	// Apply stores a batch in one transaction. It is idempotent by record id:
	// storing a record again never adds a row; a completed CDR replaces an
	// in-progress one with the same id, never the reverse, whatever the
	// order of arrival. Either the whole batch is stored or nothing.
	Apply(ctx context.Context, b Batch) error
	// CDRs returns one page of CDRs matching q, newest start first.
	CDRs(ctx context.Context, q CDRQuery) (CDRPage, error)
	// Events returns the events of one GVP session in time order.
	Events(ctx context.Context, sessionID string) ([]billing.Event, error)
	// TenantUsage returns per-tenant usage at q.Now.
	TenantUsage(ctx context.Context, q UsageQuery) ([]TenantUsage, error)
	// Arrivals returns call arrivals and peak concurrency per interval,
	// tenant and profile.
	Arrivals(ctx context.Context, q IntervalQuery) ([]IntervalStat, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}

// Batch is a set of records stored in one transaction.
type Batch struct {
	CDRs   []*billing.CDR
	Events []*billing.Event
}

// Len returns the number of records in the batch.
func (b Batch) Len() int { return len(b.CDRs) + len(b.Events) }

// CDRQuery filters CDRs. Zero fields do not filter. Time ranges are
// half-open: From inclusive, To exclusive.
type CDRQuery struct {
	Component              billing.Component // rm or mcp
	State                  billing.State     // in_progress (RT) or completed (HIST)
	StartedFrom, StartedTo time.Time
	EndedFrom, EndedTo     time.Time
	TenantID               string
	AppID                  string // IVR profile
	DN                     string // DNIS
	RemoteURI, LocalURI    string
	SessionID              string
	RecordID               string // gvp-guid
	// Page is 1-based; 0 means 1.
	Page int
	// PageSize is DefaultPageSize when 0, at most MaxPageSize.
	PageSize int
}

// CDRPage is one page of a CDR query.
type CDRPage struct {
	CDRs     []billing.CDR
	Total    int // matching CDRs on all pages
	Page     int
	PageSize int
}

// UsageQuery asks for tenant usage.
type UsageQuery struct {
	// Component whose CDRs are counted; billing.ComponentRM when empty
	// (every call has one rm CDR).
	Component billing.Component
	// Now is the reference time; time.Now() when zero.
	Now time.Time
	// Location sets the hour and day boundaries; UTC when nil.
	Location *time.Location
}

// TenantUsage is one tenant's usage.
type TenantUsage struct {
	TenantID         string `json:"tenant_id" xml:"tenant-id"`
	TenantName       string `json:"tenant_name" xml:"tenant-name"`
	InProgress       int    `json:"in_progress" xml:"in-progress"`
	ArrivalsThisHour int    `json:"arrivals_this_hour" xml:"arrivals-this-hour"`
	ArrivalsToday    int    `json:"arrivals_today" xml:"arrivals-today"`
	PeakToday        int    `json:"peak_concurrency_today" xml:"peak-concurrency-today"`
}

// IntervalQuery asks for arrivals and peak concurrency per interval.
type IntervalQuery struct {
	// Component whose CDRs are counted; billing.ComponentRM when empty.
	Component billing.Component
	// From and To bound the report (required); From is rounded down to an
	// interval boundary.
	From, To time.Time
	// Interval is 5*time.Minute, time.Hour or 24*time.Hour.
	Interval time.Duration
	// TenantID and Profile filter when not empty.
	TenantID, Profile string
	// Location sets day boundaries; UTC when nil.
	Location *time.Location
}

// IntervalStat is the traffic of one tenant and profile in one interval.
// Intervals without traffic are left out.
type IntervalStat struct {
	Start           time.Time `json:"start" xml:"start"`
	TenantID        string    `json:"tenant_id" xml:"tenant-id"`
	Profile         string    `json:"profile" xml:"profile"`
	Arrivals        int       `json:"arrivals" xml:"arrivals"`
	PeakConcurrency int       `json:"peak_concurrency" xml:"peak-concurrency"`
}
