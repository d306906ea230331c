package confstore

import (
	"encoding/json"

	"github.com/opengvp/gvp/internal/confmodel"
)

// The JSON bodies of configsrv's HTTP API (see roles/configsrv/API.md), shared by the server
// and its clients. Apply, PUT and DELETE answer with a Result.

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	// Error is a human-readable message.
	Error string `json:"error"`
	// Errors details validation problems: document, kind, name, field and message of each.
	Errors confmodel.ErrorList `json:"errors,omitempty"`
}

// ObjectList is the body of a list response.
type ObjectList struct {
	Revision int64             `json:"revision"`
	Items    []json.RawMessage `json:"items"`
}

// SnapshotBody is the body of GET /api/v1/snapshot.
type SnapshotBody struct {
	Revision int64         `json:"revision"`
	Objects  confmodel.Set `json:"objects"`
}

// RevisionBody is the body of GET /api/v1/revision.
type RevisionBody struct {
	Revision int64 `json:"revision"`
}

// WatchEvent is one change in a watch response.
type WatchEvent struct {
	Revision int64          `json:"revision"`
	Kind     confmodel.Kind `json:"kind"`
	Name     string         `json:"name"`
	Op       Op             `json:"op"`
	// Object is the object as a document (with kind) for op put.
	Object json.RawMessage `json:"object,omitempty"`
}

// WatchBody is the body of GET /api/v1/watch.
type WatchBody struct {
	After    int64        `json:"after"`
	Revision int64        `json:"revision"`
	Reset    bool         `json:"reset,omitempty"`
	Events   []WatchEvent `json:"events"`
}
