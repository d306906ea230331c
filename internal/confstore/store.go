// Package confstore persists gvp's configuration objects with a global revision and a change
// log, in embedded SQLite (the default) or PostgreSQL (production). Both backends share one
// implementation over database/sql and pass the same test suite.
//
// Every successful Apply is one transaction that bumps the global revision by one; each object
// it creates, updates or deletes is stored with (or logged at) that revision. Apply validates
// the whole resulting configuration before writing anything, so a rejected apply changes
// nothing. Writers in several processes sharing one PostgreSQL database are serialized by a row
// lock, and their commits wake the watchers of every process through LISTEN/NOTIFY.
package confstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/confmodel"
)

// Errors returned by stores, matched with errors.Is.
var (
	// ErrNotFound is returned for a Get or Delete of a missing object.
	ErrNotFound = errors.New("object not found")
	// ErrReferenced is returned when a delete would leave references to the deleted object.
	ErrReferenced = errors.New("object is referenced")
	// ErrClosed is returned by a closed store.
	ErrClosed = errors.New("store closed")
)

// Op is a change operation.
type Op string

// The operations, as requested and as logged.
const (
	OpPut    Op = "put"
	OpDelete Op = "delete"
)

// Outcome is what an apply did to one object.
type Outcome string

// The outcomes.
const (
	OutcomeCreated   Outcome = "created"
	OutcomeUpdated   Outcome = "updated"
	OutcomeDeleted   Outcome = "deleted"
	OutcomeUnchanged Outcome = "unchanged"
)

// Change is one requested change: a put of Object, or a delete of Ref.
type Change struct {
	Op Op
	// Object is the object to create or replace (OpPut).
	Object confmodel.Object
	// Ref is the object to delete (OpDelete); filled from Object for a put.
	Ref confmodel.Ref
	// Document is the position of the object in the caller's input, used in error messages;
	// -1 when there is none.
	Document int
}

// Put returns a put change for o, with no document position.
func Put(o confmodel.Object) Change { return Change{Op: OpPut, Object: o, Document: -1} }

// Delete returns a delete change for the object of kind k and key key.
func Delete(k confmodel.Kind, key string) Change {
	return Change{Op: OpDelete, Ref: confmodel.Ref{Kind: k, Key: key}, Document: -1}
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// DryRun validates and reports the outcome without writing.
	DryRun bool
}

// ObjectResult is the outcome of one change.
type ObjectResult struct {
	Kind     confmodel.Kind `json:"kind"`
	Name     string         `json:"name"`
	Outcome  Outcome        `json:"outcome"`
	Document int            `json:"document"`
}

// Result is the outcome of an Apply.
type Result struct {
	// Revision is the store's revision after the apply (unchanged when nothing changed or on a
	// dry run).
	Revision int64 `json:"revision"`
	// DryRun is true when nothing was written on purpose.
	DryRun bool `json:"dryRun,omitempty"`
	// Changed counts the objects created, updated or deleted (or that would be, on a dry run).
	Changed int `json:"changed"`
	// Objects lists every requested change in request order.
	Objects []ObjectResult `json:"objects"`
}

// Event is one entry of a ChangeSet: the latest operation on one object.
type Event struct {
	// Revision is the revision of the object's latest change.
	Revision int64          `json:"revision"`
	Kind     confmodel.Kind `json:"kind"`
	Name     string         `json:"name"`
	Op       Op             `json:"op"`
	// Object is the object as of ChangeSet.Revision, for OpPut.
	Object confmodel.Object `json:"-"`
}

// ChangeSet brings a client from revision After to revision Revision.
type ChangeSet struct {
	After    int64 `json:"after"`
	Revision int64 `json:"revision"`
	// Reset is true when After is not a revision of this store (newer than its current
	// revision): the client must reload the whole snapshot.
	Reset bool `json:"reset,omitempty"`
	// Events hold one entry per object changed after After, in revision order.
	Events []Event `json:"events"`
}

// Store is a versioned configuration store. Objects returned by a store are shared with it
// and must not be modified; use confmodel.Clone to get a copy to edit.
type Store interface {
	// Revision returns the current global revision.
	Revision(ctx context.Context) (int64, error)
	// Get returns the object of kind k and key key, or ErrNotFound.
	Get(ctx context.Context, k confmodel.Kind, key string) (confmodel.Object, error)
	// List returns the objects of kind k sorted by key, and the revision they were read at.
	List(ctx context.Context, k confmodel.Kind) ([]confmodel.Object, int64, error)
	// Snapshot returns every object sorted by kind then key, and their revision.
	Snapshot(ctx context.Context) ([]confmodel.Object, int64, error)
	// Apply validates the configuration that results from changes and, unless DryRun, writes
	// it atomically at a new revision. Puts of objects identical to the stored ones are
	// reported unchanged and written nothing; when nothing changes, the revision stays. A
	// rejected apply returns a confmodel.ErrorList (errors.Is ErrInvalid), ErrNotFound for the
	// delete of a missing object, or ErrReferenced for a delete that leaves references.
	Apply(ctx context.Context, changes []Change, opts ApplyOptions) (*Result, error)
	// Changes returns the changes after revision after, one event per object.
	Changes(ctx context.Context, after int64) (*ChangeSet, error)
	// WaitRevision blocks until the revision exceeds after, or ctx ends; it returns the revision
	// it saw. All waiters wake within milliseconds of a commit, without querying the database.
	WaitRevision(ctx context.Context, after int64) (int64, error)
	// Close releases the store.
	Close() error
}

// options configure a store.
type options struct {
	log zerolog.Logger
}

// Option configures a store.
type Option func(*options)

// WithLogger sets the store's logger (default zerolog.Nop()).
func WithLogger(l zerolog.Logger) Option { return func(o *options) { o.log = l } }

func buildOptions(opts []Option) options {
	o := options{log: zerolog.Nop()}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// ReferencedError reports a delete that would leave references to the deleted object.
type ReferencedError struct {
	// Ref is the object whose deletion was refused.
	Ref confmodel.Ref
	// By lists the references that would break.
	By []confmodel.FieldError
}

// Error names the object and its referrers.
func (e *ReferencedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cannot delete %s: ", e.Ref)
	if len(e.By) > 0 && e.By[0].Kind != "" {
		b.WriteString("still referenced by ")
	}
	for i, r := range e.By {
		if i > 0 {
			b.WriteString(", ")
		}
		if r.Kind == "" {
			b.WriteString(r.Message)
			continue
		}
		fmt.Fprintf(&b, "%s %q (field %s)", r.Kind, r.Name, r.Field)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrReferenced) true.
func (e *ReferencedError) Is(target error) bool { return target == ErrReferenced }

// notifier wakes every waiter when the revision grows: a channel closed and replaced on each
// change (a broadcast), so waiters cost nothing between commits.
type notifier struct {
	mu  sync.Mutex
	rev int64
	ch  chan struct{}
}

func newNotifier(rev int64) *notifier { return &notifier{rev: rev, ch: make(chan struct{})} }

// notify records rev and wakes the waiters if it is newer than the last one seen.
func (n *notifier) notify(rev int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if rev > n.rev {
		n.rev = rev
		close(n.ch)
		n.ch = make(chan struct{})
	}
}

// wait blocks until the revision exceeds after or ctx ends.
func (n *notifier) wait(ctx context.Context, after int64) (int64, error) {
	for {
		n.mu.Lock()
		rev, ch := n.rev, n.ch
		n.mu.Unlock()
		if rev > after {
			return rev, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return rev, ctx.Err()
		}
	}
}
