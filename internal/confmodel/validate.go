package confmodel

import (
	"encoding/json"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Name limits.
const (
	// MaxNameLen is the longest object name accepted, in bytes.
	MaxNameLen = 128
)

// validName reports whether s is a valid object name: 1 to MaxNameLen bytes of letters, digits
// and `. _ - : @` (and '/' when slash is true, for settings).
func validName(s string, slash bool) bool {
	if s == "" || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '-' || c == ':' || c == '@':
		case c == '/' && slash:
		default:
			return false
		}
	}
	if slash && (s[0] == '/' || s[len(s)-1] == '/' || strings.Contains(s, "//")) {
		return false
	}
	return s != "." && s != ".."
}

const nameRule = "want 1 to 128 letters, digits or . _ - : @"

func checkName(errs *ErrorList, o Object, field, v string, required bool) {
	if v == "" {
		if required {
			errs.add(o, field, "required")
		}
		return
	}
	if !validName(v, false) {
		errs.add(o, field, "invalid name %q: %s", v, nameRule)
	}
}

func (p *Policy) validate(errs *ErrorList, o Object, tenant bool) {
	if p == nil {
		return
	}
	if p.ForbiddenResponse != "" {
		if _, err := ParseResponse(p.ForbiddenResponse); err != nil {
			errs.add(o, "policy.forbiddenResponse", "%v", err)
		}
	}
	if p.UsageLimitExceededResponse != "" {
		if _, err := ParseResponse(p.UsageLimitExceededResponse); err != nil {
			errs.add(o, "policy.usageLimitExceededResponse", "%v", err)
		}
	}
	if p.UsageLimit != nil && *p.UsageLimit < 0 {
		errs.add(o, "policy.usageLimit", "must be 0 or more, got %d", *p.UsageLimit)
	}
	if p.MaxInboundCalls != nil {
		if !tenant {
			errs.add(o, "policy.maxInboundCalls", "applies to tenants only")
		} else if *p.MaxInboundCalls < 0 {
			errs.add(o, "policy.maxInboundCalls", "must be 0 or more, got %d", *p.MaxInboundCalls)
		}
	}
}

func (t *Tenant) validate(errs *ErrorList) {
	checkName(errs, t, "name", t.Name, true)
	if t.Name == RootTenant && t.Parent != "" {
		errs.add(t, "parent", "the root tenant %s has no parent", RootTenant)
	}
	if t.Parent != "" && t.Parent == t.Name {
		errs.add(t, "parent", "a tenant cannot be its own parent")
	} else if t.Parent != "" {
		checkName(errs, t, "parent", t.Parent, false)
	}
	if t.ID != "" && !validName(t.ID, false) {
		errs.add(t, "id", "invalid id %q: %s", t.ID, nameRule)
	}
	checkName(errs, t, "defaultApplication", t.DefaultApplication, false)
	t.Policy.validate(errs, t, true)
}

func (p *IVRProfile) validate(errs *ErrorList) {
	checkName(errs, p, "name", p.Name, true)
	checkName(errs, p, "tenant", p.Tenant, false)
	if p.ID != "" && !validName(p.ID, false) {
		errs.add(p, "id", "invalid id %q: %s", p.ID, nameRule)
	}
	if !validService(p.Service) {
		errs.add(p, "service", "unknown service %q (want one of voicexml, announcement, conference, msml, record, cpd, media)", p.Service)
	}
	if p.InitialPage == "" {
		if p.Service == ServiceVoiceXML {
			errs.add(p, "initialPage", "required for service voicexml")
		}
	} else if u, err := url.Parse(p.InitialPage); err != nil || u.Scheme == "" || (u.Host == "" && u.Scheme != "file") {
		errs.add(p, "initialPage", "invalid URL %q: want an absolute URL like http://host/app.vxml", p.InitialPage)
	}
	checkName(errs, p, "pool", p.Pool, false)
	for k, v := range p.Parameters {
		if k == "" || strings.ContainsAny(k, " \t\r\n;=?&") {
			errs.add(p, "parameters", "invalid parameter name %q", k)
		}
		if strings.ContainsAny(v, "\r\n") {
			errs.add(p, "parameters."+k, "line break in value")
		}
	}
	p.Policy.validate(errs, p, false)
}

func (d *DID) validate(errs *ErrorList) {
	checkName(errs, d, "tenant", d.Tenant, false)
	if _, err := ParsePattern(d.Pattern); err != nil {
		errs.add(d, "pattern", "%v", err)
	}
	checkName(errs, d, "profile", d.Profile, true)
}

func (p *Pool) validate(errs *ErrorList) {
	checkName(errs, p, "name", p.Name, true)
	switch p.LoadBalance {
	case LoadBalanceRoundRobin, LoadBalanceLeastPercentUsage:
	default:
		errs.add(p, "loadBalance", "unknown scheme %q (want round-robin or least-percent-usage)", p.LoadBalance)
	}
	switch p.Monitor.Method {
	case MonitorOptions, MonitorNone:
	default:
		errs.add(p, "monitor.method", "unknown method %q (want options or none)", p.Monitor.Method)
	}
	if p.Monitor.Interval < 0 {
		errs.add(p, "monitor.interval", "must be positive, got %s", p.Monitor.Interval)
	}
	if p.Monitor.Failures < 0 {
		errs.add(p, "monitor.failures", "must be 1 or more, got %d", p.Monitor.Failures)
	}
	seen := map[Service]bool{}
	for i, s := range p.Services {
		if !validService(s) {
			errs.add(p, "services["+strconv.Itoa(i)+"]", "unknown service %q", s)
		}
		if seen[s] {
			errs.add(p, "services["+strconv.Itoa(i)+"]", "duplicate service %q", s)
		}
		seen[s] = true
	}
}

func (m *MCP) validate(errs *ErrorList) {
	checkName(errs, m, "name", m.Name, true)
	checkName(errs, m, "pool", m.Pool, true)
	if m.Address == "" {
		errs.add(m, "address", "required")
	} else if host, port, err := net.SplitHostPort(m.Address); err != nil || host == "" {
		errs.add(m, "address", "invalid address %q: want host:port", m.Address)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		errs.add(m, "address", "invalid port in %q: want 1 to 65535", m.Address)
	}
	switch m.Transport {
	case TransportUDP, TransportTCP:
	default:
		errs.add(m, "transport", "unknown transport %q (want udp or tcp)", m.Transport)
	}
	if m.Capacity < 0 {
		errs.add(m, "capacity", "must be 1 or more, got %d", m.Capacity)
	}
	for k := range m.Labels {
		if k == "" {
			errs.add(m, "labels", "empty label name")
		}
	}
}

func (s *Settings) validate(errs *ErrorList) {
	if s.Name == "" {
		errs.add(s, "name", "required")
	} else if !validName(s.Name, true) {
		errs.add(s, "name", "invalid name %q: %s, and '/' between parts", s.Name, nameRule)
	}
	if _, err := json.Marshal(s.Values); err != nil {
		errs.add(s, "values", "no JSON form: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
}

// ValidateObject normalizes o and checks it on its own, without looking at other objects.
func ValidateObject(o Object) error {
	o.Normalize()
	var errs ErrorList
	o.validate(&errs)
	return errs.Err()
}

// Validate checks a whole configuration: every object on its own, then the references between
// them (parents, tenants, profiles, pools), the tenant tree (no cycle, the root present) and the
// DIDs of each tenant (no overlapping range). Objects are normalized in place. It returns an
// ErrorList or nil.
func Validate(objs []Object) error {
	_, err := build(0, objs)
	return err
}
