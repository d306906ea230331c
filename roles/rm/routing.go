package rm

import (
	"sort"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/opengvp/gvp/internal/confmodel"
	gvpsip "github.com/opengvp/gvp/internal/sip"
)

// Request-URI parameters and headers that select a profile.
const (
	// ParamTenantID is the Request-URI parameter naming the tenant (or a profile); rm strips
	// it before forwarding.
	ParamTenantID = "gvp-tenant-id"
	// HeaderProfileID selects a profile by its id.
	HeaderProfileID = "X-Genesys-gsw-ivr-profile-id"
	// HeaderProfileName selects a profile by name, in the tenant of gvp-tenant-id.
	HeaderProfileName = "X-Genesys-gsw-ivr-profile-name"
)

// How a profile was selected, as recorded in logs.
const (
	byHeaderID     = "header-id"
	byHeaderName   = "header-name"
	byURIParam     = "uri-param"
	byDID          = "did"
	byTenantDflt   = "tenant-default"
	byRootDefault  = "root-default"
	selectedNoneBy = ""
)

// selection is the outcome of profile selection.
type selection struct {
	tenant  *confmodel.Tenant
	profile *confmodel.IVRProfile
	by      string
}

// selectProfile applies SPEC.md's order: profile header, gvp-tenant-id naming a profile or a
// tenant, the DNIS against the tenant's DIDs, the tenant's default application, the root's.
// ok is false when nothing matched: the call is rejected without contacting an mcp.
func selectProfile(s *confmodel.Snapshot, req *sip.Request) (selection, bool) {
	if s == nil {
		return selection{}, false
	}
	tenantParam, hasTenant := "", false
	if req.Recipient.UriParams != nil {
		tenantParam, hasTenant = req.Recipient.UriParams.Get(ParamTenantID)
	}
	var tenant *confmodel.Tenant
	if hasTenant && tenantParam != "" {
		if t, ok := s.TenantByID(tenantParam); ok {
			tenant = t
		} else if t, ok := s.Tenant(tenantParam); ok {
			tenant = t
		}
	}

	// 1. Profile headers.
	if h := req.GetHeader(HeaderProfileID); h != nil {
		if p, ok := s.ProfileByID(strings.TrimSpace(h.Value())); ok {
			t, _ := s.Tenant(p.Tenant)
			if tenant != nil {
				t = tenant
			}
			return selection{tenant: t, profile: p, by: byHeaderID}, true
		}
	}
	if h := req.GetHeader(HeaderProfileName); h != nil {
		from := confmodel.RootTenant
		if tenant != nil {
			from = tenant.Name
		}
		if p, ok := s.ResolveProfile(from, strings.TrimSpace(h.Value())); ok {
			t := tenant
			if t == nil {
				t, _ = s.Tenant(p.Tenant)
			}
			return selection{tenant: t, profile: p, by: byHeaderName}, true
		}
	}

	// 2. gvp-tenant-id naming a profile, else the tenant.
	if hasTenant && tenantParam != "" {
		if p, ok := s.ResolveProfile(confmodel.RootTenant, tenantParam); ok {
			t, _ := s.Tenant(p.Tenant)
			return selection{tenant: t, profile: p, by: byURIParam}, true
		}
		if tenant == nil {
			return selection{}, false // an unknown tenant is not the root's call
		}
	}
	if tenant == nil {
		tenant = s.Root()
	}

	// 3. DNIS against the tenant's DIDs.
	if d, ok := s.LookupDID(tenant.Name, req.Recipient.User); ok {
		if p, ok := s.DIDProfile(d); ok {
			return selection{tenant: tenant, profile: p, by: byDID}, true
		}
	}

	// 4. The tenant's default application (walking up), then the root's.
	if p, ok := s.DefaultProfile(tenant.Name); ok {
		by := byTenantDflt
		if tenant.Name == confmodel.RootTenant {
			by = byRootDefault
		}
		return selection{tenant: tenant, profile: p, by: by}, true
	}
	return selection{}, false
}

// mcpURI is the Request-URI sent to an mcp for profile p (RFC 5552 / RFC 4240):
// sip:dialog@host:port;voicexml=<initialPage> for voicexml, sip:annc@host:port;play=<url> for
// announcements, sip:conf=<id>@host:port for conferences and sip:<service>@host:port for the
// others, followed by the profile's parameters in name order. dnis is the dialled number,
// the default conference id.
func mcpURI(p *confmodel.IVRProfile, host string, port int, transport, dnis string) sip.Uri {
	u := sip.Uri{Scheme: "sip", Host: host, Port: port, UriParams: sip.NewParams()}
	params := p.Parameters
	skip := ""
	switch p.Service {
	case confmodel.ServiceVoiceXML, "":
		u.User = "dialog"
		if p.InitialPage != "" {
			u.UriParams.Add("voicexml", gvpsip.EscapeParam(p.InitialPage))
		}
	case confmodel.ServiceAnnouncement:
		u.User = "annc"
		play := p.InitialPage
		if v, ok := params["play"]; ok && v != "" {
			play, skip = v, "play"
		}
		if play != "" {
			u.UriParams.Add("play", gvpsip.EscapeParam(play))
		}
	case confmodel.ServiceConference:
		id := dnis
		if v, ok := params["conference-id"]; ok && v != "" {
			id, skip = v, "conference-id"
		}
		u.User = "conf=" + id
	default:
		u.User = string(p.Service)
	}
	if transport != gvpsip.UDP {
		u.UriParams.Add("transport", transport)
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != skip {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		u.UriParams.Add(k, gvpsip.EscapeParam(params[k]))
	}
	return u
}
