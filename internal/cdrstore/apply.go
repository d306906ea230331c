package cdrstore

import "context"

// ApplyResult tells what storing a batch changed.
type ApplyResult struct {
	// Stored is the number of records that added or changed a row.
	Stored int
	// Duplicates is the number of records that changed nothing: a record
	// repeated in the batch, an event or a completed CDR already stored, a
	// start arriving after its end. A start repeated while the call is
	// still in progress rewrites its row and is not counted.
	Duplicates int
}

// applyCounter is implemented by stores that report duplicates; the
// Consumer uses it when available (SQLStore does).
type applyCounter interface {
	ApplyCount(ctx context.Context, b Batch) (ApplyResult, error)
}

var _ applyCounter = (*SQLStore)(nil)
