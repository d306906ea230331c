// Package confmodel is the configuration object model of gvp's configuration server: tenants,
// IVR profiles, DIDs, MCP pools, MCP members and per-instance settings; their validation; the
// decoding of multi-document YAML/JSON; and Snapshot, an immutable, indexed view of every object
// at one revision that the resource manager queries on every call.
package confmodel

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind names an object kind as written in documents (`kind: Tenant`).
type Kind string

// The object kinds.
const (
	KindTenant     Kind = "Tenant"
	KindIVRProfile Kind = "IVRProfile"
	KindDID        Kind = "DID"
	KindPool       Kind = "Pool"
	KindMCP        Kind = "MCP"
	KindSettings   Kind = "Settings"
)

// Kinds lists every kind in dependency order: an object only references kinds listed before it
// (profiles reference pools, so pools come first).
var Kinds = []Kind{KindTenant, KindPool, KindIVRProfile, KindDID, KindMCP, KindSettings}

// kindInfo describes the naming of a kind in the HTTP API and on the command line.
type kindInfo struct {
	plural  string   // path segment under /api/v1/
	aliases []string // accepted lower-case spellings
}

var kindInfos = map[Kind]kindInfo{
	KindTenant:     {"tenants", []string{"tenant", "tenants"}},
	KindIVRProfile: {"profiles", []string{"ivrprofile", "ivrprofiles", "profile", "profiles"}},
	KindDID:        {"dids", []string{"did", "dids"}},
	KindPool:       {"pools", []string{"pool", "pools"}},
	KindMCP:        {"mcps", []string{"mcp", "mcps"}},
	KindSettings:   {"settings", []string{"setting", "settings"}},
}

// Plural returns the kind's path segment in the HTTP API ("tenants", "profiles", ...).
func (k Kind) Plural() string { return kindInfos[k].plural }

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool { _, ok := kindInfos[k]; return ok }

// ParseKind resolves a kind from its document name, its plural or a common alias, ignoring case
// ("tenant", "Tenants", "profile", "ivrprofile", "did", ...).
func ParseKind(s string) (Kind, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	for k, info := range kindInfos {
		if strings.ToLower(string(k)) == l {
			return k, nil
		}
		for _, a := range info.aliases {
			if a == l {
				return k, nil
			}
		}
	}
	return "", fmt.Errorf("unknown kind %q (want one of %s)", s, kindList())
}

func kindList() string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// RootTenant is the name of the root of the tenant tree. It always exists and has no parent.
const RootTenant = "Environment"

// Service is the kind of service an IVR profile asks an MCP for.
type Service string

// The services an MCP pool serves.
const (
	ServiceVoiceXML     Service = "voicexml"
	ServiceAnnouncement Service = "announcement"
	ServiceConference   Service = "conference"
	ServiceMSML         Service = "msml"
	ServiceRecord       Service = "record"
	ServiceCPD          Service = "cpd"
	ServiceMedia        Service = "media"
)

// Services lists every valid service.
var Services = []Service{ServiceVoiceXML, ServiceAnnouncement, ServiceConference, ServiceMSML,
	ServiceRecord, ServiceCPD, ServiceMedia}

func validService(s Service) bool {
	for _, v := range Services {
		if v == s {
			return true
		}
	}
	return false
}

// LoadBalance is a pool's scheme for choosing a member.
type LoadBalance string

// The load-balancing schemes.
const (
	// LoadBalanceRoundRobin takes the available members in turn.
	LoadBalanceRoundRobin LoadBalance = "round-robin"
	// LoadBalanceLeastPercentUsage takes the member with the lowest active/capacity ratio.
	LoadBalanceLeastPercentUsage LoadBalance = "least-percent-usage"
)

// MonitorMethod is how a pool's members are probed.
type MonitorMethod string

// The monitor methods.
const (
	// MonitorOptions probes members with SIP OPTIONS.
	MonitorOptions MonitorMethod = "options"
	// MonitorNone never probes: members are always considered available.
	MonitorNone MonitorMethod = "none"
)

// Transport is the SIP transport towards an MCP.
type Transport string

// The transports.
const (
	TransportUDP Transport = "udp"
	TransportTCP Transport = "tcp"
)

// Defaults filled in by Normalize.
const (
	// DefaultForbiddenResponse is answered when a policy has allowed=false and names no response.
	DefaultForbiddenResponse = "403"
	// DefaultUsageLimitExceededResponse is answered when a usage limit is reached and the policy
	// names no response.
	DefaultUsageLimitExceededResponse = "480"
	// DefaultLoadBalance is a pool's scheme when none is given.
	DefaultLoadBalance = LoadBalanceRoundRobin
	// DefaultMonitorMethod is a pool's monitor method when none is given.
	DefaultMonitorMethod = MonitorOptions
	// DefaultMonitorInterval is the time between two probes of a member when none is given.
	DefaultMonitorInterval = 5 * time.Second
	// DefaultMonitorFailures is the number of consecutive missed probes after which a member is
	// marked unavailable, when none is given.
	DefaultMonitorFailures = 2
	// DefaultTransport is an MCP's SIP transport when none is given.
	DefaultTransport = TransportUDP
	// DefaultMCPCapacity is an MCP's capacity in concurrent calls (ports) when none is given.
	DefaultMCPCapacity = 100
	// DefaultService is a profile's service when none is given.
	DefaultService = ServiceVoiceXML
)

// Meta is the store-maintained metadata of an object. It is ignored in documents written by
// users and filled in by the store.
type Meta struct {
	// Revision is the global revision at which the object was last changed.
	Revision int64 `json:"revision,omitempty" yaml:"revision,omitempty"`
}

// Object is implemented by every configuration object.
type Object interface {
	// Kind returns the object's kind.
	Kind() Kind
	// Key returns the object's identity, unique within its kind: the name for tenants, pools,
	// MCPs and settings; "tenant/name" for IVR profiles; "tenant/pattern" for DIDs.
	Key() string
	// Metadata returns the object's store metadata, for reading or setting the revision.
	Metadata() *Meta
	// Normalize fills in defaults (empty parent, response codes, pool scheme...). It writes
	// nothing to an object that is already normalized, so normalized objects may be shared
	// read-only between goroutines.
	Normalize()
	// validate checks the object on its own, appending problems to errs.
	validate(errs *ErrorList)
}

// Ref identifies an object: its kind and key.
type Ref struct {
	Kind Kind   `json:"kind"`
	Key  string `json:"name"`
}

// String formats r as `Kind "key"`.
func (r Ref) String() string { return fmt.Sprintf("%s %q", r.Kind, r.Key) }

// RefOf returns the reference of o.
func RefOf(o Object) Ref { return Ref{Kind: o.Kind(), Key: o.Key()} }

// New returns a new, empty object of kind k, or nil for an unknown kind.
func New(k Kind) Object {
	switch k {
	case KindTenant:
		return &Tenant{}
	case KindIVRProfile:
		return &IVRProfile{}
	case KindDID:
		return &DID{}
	case KindPool:
		return &Pool{}
	case KindMCP:
		return &MCP{}
	case KindSettings:
		return &Settings{}
	}
	return nil
}

// Policy limits calls for a tenant or an IVR profile. Unset fields inherit from the tenant
// tree; see Snapshot.TenantPolicy for the exact rule.
type Policy struct {
	// Allowed, when false, rejects every call with ForbiddenResponse. Unset means allowed.
	Allowed *bool `json:"allowed,omitempty" yaml:"allowed,omitempty"`
	// ForbiddenResponse is the SIP response `code[;reason]` for a forbidden call. Empty means
	// DefaultForbiddenResponse.
	ForbiddenResponse string `json:"forbiddenResponse,omitempty" yaml:"forbiddenResponse,omitempty"`
	// MaxInboundCalls caps the concurrent inbound calls of a tenant (tenants only). Unset means
	// no cap.
	MaxInboundCalls *int `json:"maxInboundCalls,omitempty" yaml:"maxInboundCalls,omitempty"`
	// UsageLimit caps concurrent calls. Unset means no cap.
	UsageLimit *int `json:"usageLimit,omitempty" yaml:"usageLimit,omitempty"`
	// UsageLimitExceededResponse is the SIP response `code[;reason]` for a call over a limit.
	// Empty means DefaultUsageLimitExceededResponse.
	UsageLimitExceededResponse string `json:"usageLimitExceededResponse,omitempty" yaml:"usageLimitExceededResponse,omitempty"`
}

// Tenant is a node of the tenant tree. The root, RootTenant, always exists.
type Tenant struct {
	Meta `json:",inline" yaml:",inline"`
	// Name is unique among tenants.
	Name string `json:"name" yaml:"name"`
	// ID is the value of the Request-URI parameter gvp-tenant-id that selects this tenant;
	// unique among tenants when set.
	ID string `json:"id,omitempty" yaml:"id,omitempty"`
	// Parent is the parent tenant's name; empty means RootTenant (and must be empty for the root).
	Parent string `json:"parent,omitempty" yaml:"parent,omitempty"`
	// DefaultApplication names the IVR profile used when nothing else selects one; resolved in
	// this tenant, then up the tree.
	DefaultApplication string `json:"defaultApplication,omitempty" yaml:"defaultApplication,omitempty"`
	// Policy applies to every call of this tenant and, by inheritance, of its descendants.
	Policy *Policy `json:"policy,omitempty" yaml:"policy,omitempty"`
}

// IVRProfile describes an application: the service asked of the MCP and its parameters.
type IVRProfile struct {
	Meta `json:",inline" yaml:",inline"`
	// Name is unique within its tenant.
	Name string `json:"name" yaml:"name"`
	// Tenant owning the profile; empty means RootTenant.
	Tenant string `json:"tenant,omitempty" yaml:"tenant,omitempty"`
	// ID is an optional identifier, unique among all profiles when set, matched by the
	// X-Genesys-gsw-ivr-profile-id header.
	ID string `json:"id,omitempty" yaml:"id,omitempty"`
	// Service is what the MCP does; DefaultService when empty.
	Service Service `json:"service,omitempty" yaml:"service,omitempty"`
	// InitialPage is the URL of the first VoiceXML document (required for voicexml).
	InitialPage string `json:"initialPage,omitempty" yaml:"initialPage,omitempty"`
	// Pool names the MCP pool that serves the profile; empty means the first pool, by name,
	// whose Services include the profile's service.
	Pool string `json:"pool,omitempty" yaml:"pool,omitempty"`
	// Parameters are added to the Request-URI sent to the MCP.
	Parameters map[string]string `json:"parameters,omitempty" yaml:"parameters,omitempty"`
	// Policy applies to the profile's calls, under its tenant's.
	Policy *Policy `json:"policy,omitempty" yaml:"policy,omitempty"`
}

// DID maps dialled numbers (DNIS) of a tenant to an IVR profile. See ParsePattern for the
// pattern forms.
type DID struct {
	Meta `json:",inline" yaml:",inline"`
	// Tenant owning the DID; empty means RootTenant.
	Tenant string `json:"tenant,omitempty" yaml:"tenant,omitempty"`
	// Pattern is unique within its tenant: `5551000`, `300-400` or `45*`.
	Pattern string `json:"pattern" yaml:"pattern"`
	// Profile names the IVR profile, resolved in the tenant, then up the tree.
	Profile string `json:"profile" yaml:"profile"`
}

// Monitor describes how a pool probes its members.
type Monitor struct {
	// Method is options or none; DefaultMonitorMethod when empty.
	Method MonitorMethod `json:"method,omitempty" yaml:"method,omitempty"`
	// Interval between two probes of a member; DefaultMonitorInterval when zero.
	Interval Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	// Failures is the count of consecutive missed probes that marks a member unavailable;
	// DefaultMonitorFailures when zero.
	Failures int `json:"failures,omitempty" yaml:"failures,omitempty"`
}

// Pool is a group of MCPs (GVP's logical resource group).
type Pool struct {
	Meta `json:",inline" yaml:",inline"`
	// Name is unique among pools.
	Name string `json:"name" yaml:"name"`
	// LoadBalance is the scheme; DefaultLoadBalance when empty.
	LoadBalance LoadBalance `json:"loadBalance,omitempty" yaml:"loadBalance,omitempty"`
	// Monitor is the health probing of members.
	Monitor Monitor `json:"monitor" yaml:"monitor"`
	// Services lists the services the pool serves; empty means all of them.
	Services []Service `json:"services,omitempty" yaml:"services,omitempty"`
}

// MCP is a media server, member of a pool.
type MCP struct {
	Meta `json:",inline" yaml:",inline"`
	// Name is unique among MCPs.
	Name string `json:"name" yaml:"name"`
	// Pool names the pool the MCP belongs to.
	Pool string `json:"pool" yaml:"pool"`
	// Address is the MCP's SIP address, host:port.
	Address string `json:"address" yaml:"address"`
	// Transport is udp or tcp; DefaultTransport when empty.
	Transport Transport `json:"transport,omitempty" yaml:"transport,omitempty"`
	// Capacity is the number of concurrent calls (ports); DefaultMCPCapacity when zero.
	Capacity int `json:"capacity,omitempty" yaml:"capacity,omitempty"`
	// Labels are free-form tags.
	Labels map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	// Managed marks members written by service discovery, which may delete them.
	Managed bool `json:"managed,omitempty" yaml:"managed,omitempty"`
}

// Settings is a free-form map of values for one role instance, named like "mcp/mcp-0".
type Settings struct {
	Meta `json:",inline" yaml:",inline"`
	// Name is unique among settings, conventionally "role/instance".
	Name string `json:"name" yaml:"name"`
	// Values are the settings.
	Values map[string]any `json:"values,omitempty" yaml:"values,omitempty"`
}

// Kind implements Object.
func (*Tenant) Kind() Kind { return KindTenant }

// Kind implements Object.
func (*IVRProfile) Kind() Kind { return KindIVRProfile }

// Kind implements Object.
func (*DID) Kind() Kind { return KindDID }

// Kind implements Object.
func (*Pool) Kind() Kind { return KindPool }

// Kind implements Object.
func (*MCP) Kind() Kind { return KindMCP }

// Kind implements Object.
func (*Settings) Kind() Kind { return KindSettings }

// Key implements Object: the tenant's name.
func (t *Tenant) Key() string { return t.Name }

// Key implements Object: "tenant/name".
func (p *IVRProfile) Key() string { return orRoot(p.Tenant) + "/" + p.Name }

// Key implements Object: "tenant/pattern".
func (d *DID) Key() string { return orRoot(d.Tenant) + "/" + d.Pattern }

// Key implements Object: the pool's name.
func (p *Pool) Key() string { return p.Name }

// Key implements Object: the MCP's name.
func (m *MCP) Key() string { return m.Name }

// Key implements Object: the settings' name.
func (s *Settings) Key() string { return s.Name }

// Metadata implements Object.
func (m *Meta) Metadata() *Meta { return m }

func orRoot(t string) string {
	if t == "" {
		return RootTenant
	}
	return t
}

// Normalize implements Object.
func (t *Tenant) Normalize() {
	if t.Parent == "" && t.Name != RootTenant {
		t.Parent = RootTenant
	}
	t.Policy.normalize()
}

// Normalize implements Object.
func (p *IVRProfile) Normalize() {
	if p.Tenant == "" {
		p.Tenant = RootTenant
	}
	if p.Service == "" {
		p.Service = DefaultService
	}
	p.Policy.normalize()
}

// Normalize implements Object.
func (d *DID) Normalize() {
	if d.Tenant == "" {
		d.Tenant = RootTenant
	}
}

// Normalize implements Object.
func (p *Pool) Normalize() {
	if p.LoadBalance == "" {
		p.LoadBalance = DefaultLoadBalance
	}
	if p.Monitor.Method == "" {
		p.Monitor.Method = DefaultMonitorMethod
	}
	if p.Monitor.Interval == 0 {
		p.Monitor.Interval = Duration(DefaultMonitorInterval)
	}
	if p.Monitor.Failures == 0 {
		p.Monitor.Failures = DefaultMonitorFailures
	}
}

// Normalize implements Object.
func (m *MCP) Normalize() {
	if m.Transport == "" {
		m.Transport = DefaultTransport
	}
	if l := Transport(strings.ToLower(string(m.Transport))); l != m.Transport {
		m.Transport = l
	}
	if m.Capacity == 0 {
		m.Capacity = DefaultMCPCapacity
	}
}

// Normalize implements Object.
func (*Settings) Normalize() {}

func (p *Policy) normalize() {
	if p == nil {
		return
	}
	// Write only on change: normalized objects shared between goroutines stay read-only.
	if v := strings.TrimSpace(p.ForbiddenResponse); v != p.ForbiddenResponse {
		p.ForbiddenResponse = v
	}
	if v := strings.TrimSpace(p.UsageLimitExceededResponse); v != p.UsageLimitExceededResponse {
		p.UsageLimitExceededResponse = v
	}
}

// Serves reports whether the pool serves service s.
func (p *Pool) Serves(s Service) bool {
	if len(p.Services) == 0 {
		return true
	}
	for _, v := range p.Services {
		if v == s {
			return true
		}
	}
	return false
}

// SortObjects sorts objects by kind (in Kinds order) then key, for stable output.
func SortObjects(objs []Object) {
	order := make(map[Kind]int, len(Kinds))
	for i, k := range Kinds {
		order[k] = i
	}
	// Keys are computed once: for profiles and DIDs Key allocates.
	type entry struct {
		kind int
		key  string
		o    Object
	}
	es := make([]entry, len(objs))
	for i, o := range objs {
		es[i] = entry{order[o.Kind()], o.Key(), o}
	}
	slices.SortFunc(es, func(a, b entry) int {
		if c := cmp.Compare(a.kind, b.kind); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	for i, e := range es {
		objs[i] = e.o
	}
}
