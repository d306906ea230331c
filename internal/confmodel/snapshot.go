package confmodel

import (
	"sort"
)

// Set is every object of a configuration, grouped by kind: the serialized form of a snapshot.
type Set struct {
	Tenants  []*Tenant     `json:"tenants"`
	Profiles []*IVRProfile `json:"profiles"`
	DIDs     []*DID        `json:"dids"`
	Pools    []*Pool       `json:"pools"`
	MCPs     []*MCP        `json:"mcps"`
	Settings []*Settings   `json:"settings"`
}

// Add appends o to the slice of its kind.
func (s *Set) Add(o Object) {
	switch v := o.(type) {
	case *Tenant:
		s.Tenants = append(s.Tenants, v)
	case *IVRProfile:
		s.Profiles = append(s.Profiles, v)
	case *DID:
		s.DIDs = append(s.DIDs, v)
	case *Pool:
		s.Pools = append(s.Pools, v)
	case *MCP:
		s.MCPs = append(s.MCPs, v)
	case *Settings:
		s.Settings = append(s.Settings, v)
	}
}

// Objects returns every object of s, in Kinds order.
func (s *Set) Objects() []Object {
	out := make([]Object, 0, s.Len())
	for _, v := range s.Tenants {
		out = append(out, v)
	}
	for _, v := range s.Pools {
		out = append(out, v)
	}
	for _, v := range s.Profiles {
		out = append(out, v)
	}
	for _, v := range s.DIDs {
		out = append(out, v)
	}
	for _, v := range s.MCPs {
		out = append(out, v)
	}
	for _, v := range s.Settings {
		out = append(out, v)
	}
	return out
}

// Len returns the number of objects in s.
func (s *Set) Len() int {
	return len(s.Tenants) + len(s.Profiles) + len(s.DIDs) + len(s.Pools) + len(s.MCPs) + len(s.Settings)
}

// Snapshot is an immutable, validated view of every object at one revision, indexed for the
// lookups made on every call. Its methods are safe for concurrent use; the objects it returns
// must not be modified.
type Snapshot struct {
	revision     int64
	objs         []Object
	tenants      map[string]*Tenant
	tenantsByID  map[string]*Tenant
	chains       map[string][]*Tenant // root first, the tenant last
	profiles     map[string]*IVRProfile
	profilesByID map[string]*IVRProfile
	dids         map[string]*didIndex
	pools        map[string]*Pool
	poolNames    []string
	members      map[string][]*MCP
	mcps         map[string]*MCP
	settings     map[string]*Settings
}

// NewSnapshot validates objs (see Validate) and indexes them as the configuration at revision
// rev. Objects are normalized in place and owned by the snapshot afterwards.
func NewSnapshot(rev int64, objs []Object) (*Snapshot, error) {
	return build(rev, objs)
}

// Revision returns the snapshot's revision.
func (s *Snapshot) Revision() int64 { return s.revision }

// Objects returns every object, sorted by kind (Kinds order) then key. The slice is shared.
func (s *Snapshot) Objects() []Object { return s.objs }

// Set returns the objects grouped by kind.
func (s *Snapshot) Set() Set {
	var set Set
	for _, o := range s.objs {
		set.Add(o)
	}
	return set
}

// Tenant returns the tenant named name.
func (s *Snapshot) Tenant(name string) (*Tenant, bool) { t, ok := s.tenants[name]; return t, ok }

// TenantByID returns the tenant whose id (gvp-tenant-id) is id.
func (s *Snapshot) TenantByID(id string) (*Tenant, bool) { t, ok := s.tenantsByID[id]; return t, ok }

// Root returns the root tenant.
func (s *Snapshot) Root() *Tenant { return s.tenants[RootTenant] }

// TenantChain returns the tenants from the root down to the named one, or nil if unknown.
func (s *Snapshot) TenantChain(name string) []*Tenant { return s.chains[name] }

// Profile returns the profile named name in tenant, without looking up the tree.
func (s *Snapshot) Profile(tenant, name string) (*IVRProfile, bool) {
	p, ok := s.profiles[orRoot(tenant)+"/"+name]
	return p, ok
}

// ProfileByID returns the profile whose id is id.
func (s *Snapshot) ProfileByID(id string) (*IVRProfile, bool) {
	p, ok := s.profilesByID[id]
	return p, ok
}

// ResolveProfile returns the profile named name as seen from tenant: the tenant's own profile
// of that name, else its parent's, and so on up to the root.
func (s *Snapshot) ResolveProfile(tenant, name string) (*IVRProfile, bool) {
	chain := s.chains[orRoot(tenant)]
	for i := len(chain) - 1; i >= 0; i-- {
		if p, ok := s.profiles[chain[i].Name+"/"+name]; ok {
			return p, true
		}
	}
	return nil, false
}

// DefaultProfile returns the default application of tenant: the first tenant, from tenant up to
// the root, that names a defaultApplication, resolved with ResolveProfile from that tenant.
func (s *Snapshot) DefaultProfile(tenant string) (*IVRProfile, bool) {
	chain := s.chains[orRoot(tenant)]
	for i := len(chain) - 1; i >= 0; i-- {
		if app := chain[i].DefaultApplication; app != "" {
			return s.ResolveProfile(chain[i].Name, app)
		}
	}
	return nil, false
}

// LookupDID returns the DID of tenant matching dnis: an exact pattern beats a range, which beats
// the longest matching prefix. DIDs of other tenants, parents included, are not considered.
func (s *Snapshot) LookupDID(tenant, dnis string) (*DID, bool) {
	x := s.dids[orRoot(tenant)]
	if x == nil {
		return nil, false
	}
	d := x.lookup(dnis)
	return d, d != nil
}

// DIDProfile returns the profile a DID points to, resolved from the DID's tenant.
func (s *Snapshot) DIDProfile(d *DID) (*IVRProfile, bool) {
	return s.ResolveProfile(d.Tenant, d.Profile)
}

// Pool returns the pool named name.
func (s *Snapshot) Pool(name string) (*Pool, bool) { p, ok := s.pools[name]; return p, ok }

// Pools returns every pool, sorted by name.
func (s *Snapshot) Pools() []*Pool {
	out := make([]*Pool, len(s.poolNames))
	for i, n := range s.poolNames {
		out[i] = s.pools[n]
	}
	return out
}

// PoolForProfile returns the pool serving p: p.Pool when set, else the first pool by name that
// serves p.Service.
func (s *Snapshot) PoolForProfile(p *IVRProfile) (*Pool, bool) {
	if p.Pool != "" {
		return s.Pool(p.Pool)
	}
	for _, n := range s.poolNames {
		if s.pools[n].Serves(p.Service) {
			return s.pools[n], true
		}
	}
	return nil, false
}

// Members returns the MCPs of pool, sorted by name. The slice is shared.
func (s *Snapshot) Members(pool string) []*MCP { return s.members[pool] }

// MCP returns the MCP named name.
func (s *Snapshot) MCP(name string) (*MCP, bool) { m, ok := s.mcps[name]; return m, ok }

// Settings returns the settings named name.
func (s *Snapshot) Settings(name string) (*Settings, bool) { v, ok := s.settings[name]; return v, ok }

// build validates and indexes objs.
func build(rev int64, objs []Object) (*Snapshot, error) {
	s := &Snapshot{
		revision:     rev,
		tenants:      map[string]*Tenant{},
		tenantsByID:  map[string]*Tenant{},
		chains:       map[string][]*Tenant{},
		profiles:     map[string]*IVRProfile{},
		profilesByID: map[string]*IVRProfile{},
		dids:         map[string]*didIndex{},
		pools:        map[string]*Pool{},
		members:      map[string][]*MCP{},
		mcps:         map[string]*MCP{},
		settings:     map[string]*Settings{},
	}
	var errs ErrorList
	s.objs = make([]Object, 0, len(objs))
	seen := make(map[Ref]bool, len(objs))
	var dids []*DID
	for _, o := range objs {
		if o == nil {
			continue
		}
		o.Normalize()
		o.validate(&errs)
		r := RefOf(o)
		if seen[r] {
			errs.add(o, "", "duplicate %s %q", r.Kind, r.Key)
			continue
		}
		seen[r] = true
		s.objs = append(s.objs, o)
		switch v := o.(type) {
		case *Tenant:
			s.tenants[v.Name] = v
		case *IVRProfile:
			s.profiles[v.Key()] = v
		case *DID:
			dids = append(dids, v)
		case *Pool:
			s.pools[v.Name] = v
			s.poolNames = append(s.poolNames, v.Name)
		case *MCP:
			s.mcps[v.Name] = v
		case *Settings:
			s.settings[v.Name] = v
		}
	}
	SortObjects(s.objs)
	sort.Strings(s.poolNames)

	if _, ok := s.tenants[RootTenant]; !ok {
		errs = append(errs, FieldError{Document: -1, Kind: KindTenant, Name: RootTenant,
			Message: "the root tenant " + RootTenant + " is required"})
	}
	// Tenants: ids, parents, cycles. Sorted so errors come in a stable order.
	for _, o := range s.objs {
		t, ok := o.(*Tenant)
		if !ok {
			continue
		}
		if t.ID != "" {
			if other, dup := s.tenantsByID[t.ID]; dup {
				errs.add(t, "id", "id %q already used by tenant %q", t.ID, other.Name)
			} else {
				s.tenantsByID[t.ID] = t
			}
		}
		if t.Parent != "" && t.Parent != t.Name {
			if _, ok := s.tenants[t.Parent]; !ok {
				errs.addRef(t, "parent", Ref{KindTenant, t.Parent}, "unknown tenant %q", t.Parent)
			}
		}
	}
	for _, o := range s.objs {
		if t, ok := o.(*Tenant); ok {
			s.chain(t, &errs)
		}
	}
	for _, o := range s.objs {
		switch v := o.(type) {
		case *IVRProfile:
			if _, ok := s.tenants[v.Tenant]; !ok {
				errs.addRef(v, "tenant", Ref{KindTenant, v.Tenant}, "unknown tenant %q", v.Tenant)
			}
			if v.ID != "" {
				if other, dup := s.profilesByID[v.ID]; dup {
					errs.add(v, "id", "id %q already used by profile %q", v.ID, other.Key())
				} else {
					s.profilesByID[v.ID] = v
				}
			}
			if v.Pool != "" {
				if _, ok := s.pools[v.Pool]; !ok {
					errs.addRef(v, "pool", Ref{KindPool, v.Pool}, "unknown pool %q", v.Pool)
				}
			}
		case *MCP:
			if _, ok := s.pools[v.Pool]; !ok {
				errs.addRef(v, "pool", Ref{KindPool, v.Pool}, "unknown pool %q", v.Pool)
			} else {
				s.members[v.Pool] = append(s.members[v.Pool], v)
			}
		}
	}
	// Default applications, once chains are known.
	for _, o := range s.objs {
		if t, ok := o.(*Tenant); ok && t.DefaultApplication != "" && s.chains[t.Name] != nil {
			if _, ok := s.ResolveProfile(t.Name, t.DefaultApplication); !ok {
				errs.addRef(t, "defaultApplication", Ref{KindIVRProfile, t.Name + "/" + t.DefaultApplication},
					"unknown profile %q in tenant %q or its parents", t.DefaultApplication, t.Name)
			}
		}
	}
	// DIDs: tenants, profiles, pattern index per tenant.
	for _, d := range dids {
		p, err := ParsePattern(d.Pattern)
		if err != nil {
			continue // reported by validate
		}
		if _, ok := s.tenants[d.Tenant]; !ok {
			errs.addRef(d, "tenant", Ref{KindTenant, d.Tenant}, "unknown tenant %q", d.Tenant)
			continue
		}
		if s.chains[d.Tenant] != nil {
			if _, ok := s.ResolveProfile(d.Tenant, d.Profile); !ok {
				errs.addRef(d, "profile", Ref{KindIVRProfile, d.Tenant + "/" + d.Profile},
					"unknown profile %q in tenant %q or its parents", d.Profile, d.Tenant)
			}
		}
		x := s.dids[d.Tenant]
		if x == nil {
			x = newDIDIndex()
			s.dids[d.Tenant] = x
		}
		x.add(d, p)
	}
	for _, x := range s.dids {
		for _, pair := range x.finish() {
			errs.add(pair[1], "pattern", "range %s overlaps range %s of the same tenant", pair[1].Pattern, pair[0].Pattern)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// chain computes the root-first ancestry of t, reporting cycles and broken parents once.
func (s *Snapshot) chain(t *Tenant, errs *ErrorList) []*Tenant {
	if c, ok := s.chains[t.Name]; ok {
		return c
	}
	var path []*Tenant
	onPath := map[string]bool{}
	cur := t
	for {
		if c, ok := s.chains[cur.Name]; ok {
			if c == nil { // a broken ancestor
				break
			}
			full := make([]*Tenant, 0, len(c)+len(path))
			full = append(full, c...)
			for i := len(path) - 1; i >= 0; i-- {
				full = append(full, path[i])
				s.chains[path[i].Name] = append([]*Tenant(nil), full...)
			}
			return s.chains[t.Name]
		}
		if onPath[cur.Name] {
			errs.add(t, "parent", "cycle in the tenant tree through tenant %q", cur.Name)
			break
		}
		onPath[cur.Name] = true
		path = append(path, cur)
		if cur.Parent == "" || cur.Parent == cur.Name {
			if cur.Name != RootTenant {
				break // a second root: reported by validate (self-parent) or impossible after Normalize
			}
			full := make([]*Tenant, 0, len(path))
			for i := len(path) - 1; i >= 0; i-- {
				full = append(full, path[i])
				s.chains[path[i].Name] = append([]*Tenant(nil), full...)
			}
			return s.chains[t.Name]
		}
		next, ok := s.tenants[cur.Parent]
		if !ok {
			break // unknown parent: reported by the caller
		}
		cur = next
	}
	for _, p := range path {
		s.chains[p.Name] = nil
	}
	return nil
}
