package sd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/confclient"
	"github.com/opengvp/gvp/internal/confmodel"
	"github.com/opengvp/gvp/internal/confstore"
	"github.com/opengvp/gvp/internal/discovery"
)

// Inventory limits and names.
const (
	// DefaultApplication is a tenant's default application when its entry names none.
	DefaultApplication = "IVRAppDefault"
	// TenantKeyPrefix is the registry KV folder of provisioned tenants: tenants/<id>.
	TenantKeyPrefix = "tenants/"
	// maxInventoryFile bounds the size of one inventory file, in bytes.
	maxInventoryFile = 64 << 10
	// maxNameLen is the longest tenant name, id or profile name configsrv accepts.
	maxNameLen = 128
)

// builtinTemplates are the default IVR profiles of a provisioned tenant.
const builtinTemplates = `kind: IVRProfile
name: IVRAppDefault
tenant: {{.Name}}
service: voicexml
initialPage: {{.InitialPage}}
---
kind: IVRProfile
name: conference
tenant: {{.Name}}
service: conference
---
kind: IVRProfile
name: cpd
tenant: {{.Name}}
service: cpd
---
kind: IVRProfile
name: record
tenant: {{.Name}}
service: record
---
kind: IVRProfile
name: media
tenant: {{.Name}}
service: media
`

// InventoryEntry is one inventory file: a tenant to provision.
type InventoryEntry struct {
	// Name is the tenant's name.
	Name string `json:"name"`
	// ID is the tenant's gvp-tenant-id and the KV key tenants/<id>.
	ID string `json:"id"`
	// CCID is the tenant's contact-centre id in Genesys Web Services (informational).
	CCID string `json:"gws-ccid,omitempty"`
	// DefaultApplication is the tenant's default profile; DefaultApplication when empty.
	DefaultApplication string `json:"default-application,omitempty"`
}

// validObjectName mirrors configsrv's rule for names: 1-128 characters among letters, digits
// and . _ - : @.
func validObjectName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	return discovery.SanitizeName(s) == s
}

// ParseInventoryEntry decodes and checks one inventory file. Unknown fields are errors (a typo
// would otherwise be silently ignored); name and id are required.
func ParseInventoryEntry(b []byte) (InventoryEntry, error) {
	var e InventoryEntry
	if len(b) > maxInventoryFile {
		return e, fmt.Errorf("larger than %d bytes", maxInventoryFile)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return e, fmt.Errorf("decode: %w", err)
	}
	if dec.More() {
		return e, errors.New("decode: more than one JSON value")
	}
	if e.DefaultApplication == "" {
		e.DefaultApplication = DefaultApplication
	}
	switch {
	case !validObjectName(e.Name):
		return e, fmt.Errorf("name %q: want 1-%d characters among letters, digits and . _ - : @", e.Name, maxNameLen)
	case e.Name == confmodel.RootTenant:
		return e, fmt.Errorf("name %q: the root tenant cannot be provisioned", e.Name)
	case !validObjectName(e.ID):
		return e, fmt.Errorf("id %q: want 1-%d characters among letters, digits and . _ - : @", e.ID, maxNameLen)
	case !validObjectName(e.DefaultApplication):
		return e, fmt.Errorf("default-application %q: not a valid profile name", e.DefaultApplication)
	case len(e.CCID) > 256:
		return e, errors.New("gws-ccid longer than 256 bytes")
	}
	return e, nil
}

// templateData is what profile templates see.
type templateData struct {
	InventoryEntry
	// InitialPage is the rendered sd.tenant.initial_page.
	InitialPage string
}

// Templates render a tenant's default IVR profiles.
type Templates struct {
	profiles *template.Template
	page     *template.Template
}

// ParseTemplates parses profile templates (documents; built-in when empty) and the initial page
// template, and renders both once with a sample entry to catch errors at start.
func ParseTemplates(profiles, initialPage string) (*Templates, error) {
	if profiles == "" {
		profiles = builtinTemplates
	}
	t := &Templates{}
	var err error
	if t.profiles, err = template.New("profiles").Option("missingkey=error").Parse(profiles); err != nil {
		return nil, fmt.Errorf("profile templates: %w", err)
	}
	if t.page, err = template.New("initial_page").Option("missingkey=error").Parse(initialPage); err != nil {
		return nil, fmt.Errorf("initial page template: %w", err)
	}
	if _, err := t.Render(InventoryEntry{Name: "sample", ID: "0", DefaultApplication: DefaultApplication}); err != nil {
		return nil, err
	}
	return t, nil
}

// Render returns the profiles of e's tenant, each forced into that tenant.
func (t *Templates) Render(e InventoryEntry) ([]*confmodel.IVRProfile, error) {
	var page bytes.Buffer
	if err := t.page.Execute(&page, e); err != nil {
		return nil, fmt.Errorf("initial page template: %w", err)
	}
	var docs bytes.Buffer
	if err := t.profiles.Execute(&docs, templateData{InventoryEntry: e, InitialPage: page.String()}); err != nil {
		return nil, fmt.Errorf("profile templates: %w", err)
	}
	objs, err := confmodel.DecodeObjects(docs.Bytes())
	if err != nil {
		return nil, fmt.Errorf("profile templates: %w", err)
	}
	out := make([]*confmodel.IVRProfile, 0, len(objs))
	for _, o := range objs {
		p, ok := o.(*confmodel.IVRProfile)
		if !ok {
			return nil, fmt.Errorf("profile templates: %s: only IVRProfile documents are allowed", confmodel.RefOf(o))
		}
		p.Tenant = e.Name
		p.Normalize()
		out = append(out, p)
	}
	return out, nil
}

// TenantRecord is the JSON stored under tenants/<id>: the inventory entry and what was
// provisioned for it. It holds no time or revision, so provisioning the same entry again writes
// the same bytes.
type TenantRecord struct {
	InventoryEntry
	// Tenant is the configsrv tenant's name.
	Tenant string `json:"tenant"`
	// Profiles are the names of the tenant's default profiles.
	Profiles []string `json:"profiles"`
}

// fileState is what the provisioner remembers of one inventory file.
type fileState struct {
	mtime time.Time
	size  int64
	hash  [sha256.Size]byte
	done  bool   // provisioned, or reported invalid: nothing to do until the content changes
	id    string // the tenant id provisioned from the file
}

// provisioner provisions tenants from the inventory folder.
type provisioner struct {
	cfg   Config
	reg   discovery.Registry
	cc    *confclient.Client
	m     *metrics
	log   zerolog.Logger
	tmpls *Templates

	files map[string]*fileState // owned by the scan goroutine
	scans atomic.Int64          // completed scans

	mu  sync.Mutex
	err error // the registry or configsrv was unavailable during the last scan
}

func newProvisioner(cfg Config, reg discovery.Registry, cc *confclient.Client, m *metrics, log zerolog.Logger) (*provisioner, error) {
	var src string
	if cfg.Tenant.Templates != "" {
		b, err := os.ReadFile(cfg.Tenant.Templates)
		if err != nil {
			return nil, fmt.Errorf("sd.tenant.templates: %w", err)
		}
		src = string(b)
	}
	t, err := ParseTemplates(src, cfg.Tenant.InitialPage)
	if err != nil {
		return nil, fmt.Errorf("sd.tenant: %w", err)
	}
	return &provisioner{cfg: cfg, reg: reg, cc: cc, m: m, log: log, tmpls: t, files: map[string]*fileState{}}, nil
}

func (p *provisioner) readyErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return fmt.Errorf("inventory: %w", p.err)
	}
	return nil
}

func (p *provisioner) run(ctx context.Context) {
	for {
		p.scan(ctx)
		if !sleep(ctx, p.cfg.InventoryPoll) {
			return
		}
	}
}

// scan provisions every new or changed file, one at a time, in name order. A file that cannot
// be provisioned because configsrv or the registry is unavailable is retried at the next scan,
// and the scan stops there.
func (p *provisioner) scan(ctx context.Context) {
	ents, err := os.ReadDir(p.cfg.InventoryDir)
	if err != nil {
		p.setErr(fmt.Errorf("read %s: %w", p.cfg.InventoryDir, err))
		p.m.errors.WithLabelValues(sourceInventory).Inc()
		p.log.Warn().Err(err).Msg("cannot read the inventory folder")
		return
	}
	seen := map[string]bool{}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
			seen[e.Name()] = true
		}
	}
	sort.Strings(names)
	p.m.inventoryFiles.Set(float64(len(names)))
	for name := range p.files {
		if !seen[name] {
			delete(p.files, name) // removing a file does not remove its tenant
		}
	}
	for _, name := range names {
		if ctx.Err() != nil {
			return
		}
		if err := p.file(ctx, name); err != nil {
			p.setErr(err)
			p.m.errors.WithLabelValues(sourceInventory).Inc()
			p.log.Warn().Err(err).Str("file", name).Msg("provisioning postponed")
			return
		}
	}
	p.setErr(nil)
	p.scans.Add(1)
}

func (p *provisioner) setErr(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

// file handles one inventory file; it returns an error only when a retry may succeed.
func (p *provisioner) file(ctx context.Context, name string) error {
	path := filepath.Join(p.cfg.InventoryDir, name)
	fi, err := os.Stat(path)
	if err != nil {
		return nil // removed meanwhile
	}
	st := p.files[name]
	if st != nil && st.done && st.mtime.Equal(fi.ModTime()) && st.size == fi.Size() {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	sum := sha256.Sum256(b)
	if st != nil && st.done && st.hash == sum {
		st.mtime, st.size = fi.ModTime(), fi.Size()
		return nil
	}
	if st == nil {
		st = &fileState{}
		p.files[name] = st
	}
	st.mtime, st.size, st.hash, st.done = fi.ModTime(), fi.Size(), sum, false

	e, err := ParseInventoryEntry(b)
	if err != nil {
		p.invalid(st, name, err)
		return nil
	}
	changed, err := p.Provision(ctx, e)
	if err != nil {
		if isUnavailable(err) {
			return fmt.Errorf("provision tenant %s from %s: %w", e.Name, name, err)
		}
		p.invalid(st, name, err)
		return nil
	}
	if st.id != "" && st.id != e.ID {
		if err := p.reg.KVDelete(ctx, TenantKeyPrefix+st.id); err != nil {
			return fmt.Errorf("delete old key %s%s: %w", TenantKeyPrefix, st.id, err)
		}
	}
	st.id, st.done = e.ID, true
	if changed {
		p.m.provisioned.Inc()
		p.log.Info().Str("file", name).Str("tenant", e.Name).Str("id", e.ID).Msg("tenant provisioned")
	}
	return nil
}

// invalid reports a file that cannot be provisioned as it is; it is not retried until its
// content changes.
func (p *provisioner) invalid(st *fileState, name string, err error) {
	st.done = true
	p.m.invalidFiles.Inc()
	p.log.Error().Err(err).Str("file", name).Msg("invalid inventory file skipped")
}

// isUnavailable tells a transient failure (network, 5xx, registry) from a rejection.
func isUnavailable(err error) bool {
	var ae *confclient.APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Status == 401 || ae.Status == 403
	}
	return !errors.Is(err, confmodel.ErrInvalid) && !errors.Is(err, errTemplate)
}

// errTemplate marks template rendering errors (a rejection, not a transient failure).
var errTemplate = errors.New("template")

// Provision creates or updates e's tenant, creates its default profiles that do not exist yet
// (existing ones are left as the operator may have changed them) in one atomic apply, and writes
// the KV entry tenants/<id> when it differs. It reports whether anything changed.
func (p *provisioner) Provision(ctx context.Context, e InventoryEntry) (bool, error) {
	profiles, err := p.tmpls.Render(e)
	if err != nil {
		return false, fmt.Errorf("%w: %w", errTemplate, err)
	}
	tenant := &confmodel.Tenant{Name: e.Name, ID: e.ID, DefaultApplication: e.DefaultApplication}
	if cur, err := confclient.GetAs[*confmodel.Tenant](ctx, p.cc, e.Name); err == nil {
		tenant.Parent, tenant.Policy = cur.Parent, cur.Policy // owned by the operator
	} else if !errors.Is(err, confstore.ErrNotFound) {
		return false, fmt.Errorf("get tenant: %w", err)
	}
	existing, _, err := p.cc.List(ctx, confmodel.KindIVRProfile, confclient.ListFilter{Tenant: e.Name})
	if err != nil {
		return false, fmt.Errorf("list profiles: %w", err)
	}
	have := map[string]bool{}
	for _, o := range existing {
		have[o.Key()] = true
	}
	objs := []confmodel.Object{tenant}
	rec := TenantRecord{InventoryEntry: e, Tenant: e.Name, Profiles: []string{}}
	for _, pr := range profiles {
		rec.Profiles = append(rec.Profiles, pr.Name)
		if !have[pr.Key()] {
			objs = append(objs, pr)
		}
	}
	res, err := p.cc.ApplyObjects(ctx, objs, false)
	if err != nil {
		return false, fmt.Errorf("apply: %w", err)
	}
	changed := res.Changed > 0
	val, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	key := TenantKeyPrefix + e.ID
	old, ok, err := p.reg.KVGet(ctx, key)
	if err != nil {
		return false, fmt.Errorf("registry: %w", err)
	}
	if !ok || !bytes.Equal(old, val) {
		if err := p.reg.KVPut(ctx, key, val); err != nil {
			return false, fmt.Errorf("registry: %w", err)
		}
		changed = true
	}
	return changed, nil
}
