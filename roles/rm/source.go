package rm

import (
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/opengvp/gvp/internal/confmodel"
)

// ConfigSource gives rm the configuration (tenants, profiles, DIDs, pools, members). rm reads
// Snapshot on every call, so changes apply to the next call; OnChange is how pools learn about
// new members and monitor settings without a restart. The configuration client (a cache kept
// current by configsrv's watch) implements it; MemorySource is an in-memory one.
type ConfigSource interface {
	// Snapshot returns the current configuration; nil when none is known yet.
	Snapshot() *confmodel.Snapshot
	// OnChange registers f, called with each new snapshot after the current one.
	OnChange(f func(*confmodel.Snapshot))
}

// MemorySource is a ConfigSource holding a snapshot set by its owner: a static configuration
// file, or tests. The zero value holds no snapshot.
type MemorySource struct {
	mu   sync.RWMutex
	snap *confmodel.Snapshot
	subs []func(*confmodel.Snapshot)
}

// NewMemorySource returns a source holding s.
func NewMemorySource(s *confmodel.Snapshot) *MemorySource { return &MemorySource{snap: s} }

// Snapshot implements ConfigSource.
func (m *MemorySource) Snapshot() *confmodel.Snapshot {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.snap
}

// OnChange implements ConfigSource.
func (m *MemorySource) OnChange(f func(*confmodel.Snapshot)) {
	m.mu.Lock()
	m.subs = append(m.subs, f)
	m.mu.Unlock()
}

// Set replaces the snapshot and notifies the subscribers.
func (m *MemorySource) Set(s *confmodel.Snapshot) {
	m.mu.Lock()
	m.snap = s
	subs := slices.Clone(m.subs)
	m.mu.Unlock()
	for _, f := range subs {
		f(s)
	}
}

// SetDocuments decodes documents in configsrv's format (multi-document YAML or JSON) and sets
// them as the snapshot at revision rev.
func (m *MemorySource) SetDocuments(rev int64, data []byte) error {
	s, err := SnapshotFromDocuments(rev, data)
	if err != nil {
		return err
	}
	m.Set(s)
	return nil
}

// SnapshotFromDocuments builds a snapshot from documents in configsrv's format. The root tenant
// is added when the documents do not define it.
func SnapshotFromDocuments(rev int64, data []byte) (*confmodel.Snapshot, error) {
	objs, err := confmodel.DecodeObjects(data)
	if err != nil {
		return nil, err
	}
	hasRoot := false
	for _, o := range objs {
		if t, ok := o.(*confmodel.Tenant); ok && t.Name == confmodel.RootTenant {
			hasRoot = true
		}
	}
	if !hasRoot {
		objs = append([]confmodel.Object{&confmodel.Tenant{Name: confmodel.RootTenant}}, objs...)
	}
	return confmodel.NewSnapshot(rev, objs)
}

// LoadStaticConfig reads a file of documents (see SnapshotFromDocuments) into a MemorySource.
func LoadStaticConfig(path string) (*MemorySource, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read static configuration: %w", err)
	}
	s, err := SnapshotFromDocuments(1, data)
	if err != nil {
		return nil, fmt.Errorf("static configuration %s: %w", path, err)
	}
	return NewMemorySource(s), nil
}
