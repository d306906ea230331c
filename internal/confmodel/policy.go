package confmodel

// Unlimited is the value of an effective limit that no level of the tenant tree sets.
const Unlimited = -1

// EffectivePolicy is the policy that applies to a call of a tenant or profile once the tenant
// tree has been walked. See Snapshot.TenantPolicy for the rule.
type EffectivePolicy struct {
	// Allowed is false when any level forbids calls.
	Allowed bool
	// ForbiddenResponse is the response for a forbidden call.
	ForbiddenResponse Response
	// ForbiddenBy names the level that forbids (the one closest to the root), when !Allowed.
	ForbiddenBy Ref
	// UsageLimit is the cap of concurrent calls, or Unlimited.
	UsageLimit int
	// UsageLimitExceededResponse is the response for a call over UsageLimit.
	UsageLimitExceededResponse Response
	// UsageLimitBy names the level whose limit applies, when UsageLimit != Unlimited.
	UsageLimitBy Ref
	// MaxInboundCalls is the cap of the tenant's concurrent inbound calls, or Unlimited.
	MaxInboundCalls int
	// MaxInboundCallsBy names the tenant whose cap applies, when MaxInboundCalls != Unlimited.
	MaxInboundCallsBy Ref
}

var (
	defaultForbidden = mustResponse(DefaultForbiddenResponse)
	defaultExceeded  = mustResponse(DefaultUsageLimitExceededResponse)
)

// TenantPolicy returns the effective policy of the named tenant, or false if it is unknown.
//
// The policy is computed over the chain root → ... → tenant (→ profile for ProfilePolicy), and a
// level closer to the root overrides the levels below it:
//
//   - allowed: calls are allowed only if no level says allowed=false. The response is the
//     forbiddenResponse of the forbidding level closest to the root (default 403).
//   - usageLimit: the smallest limit set at any level applies (a child cannot raise its
//     parent's limit); on a tie the level closest to the root wins. The response is that
//     level's usageLimitExceededResponse (default 480). Each limit is a cap on the concurrent
//     calls counted for the object being checked (the profile, or the tenant), not a shared
//     budget of the subtree.
//   - maxInboundCalls (tenants only): the smallest value along the tenant chain, counted
//     against the tenant's own concurrent inbound calls.
//
// Unset values never restrict. A limit of 0 rejects every call with the usage response.
func (s *Snapshot) TenantPolicy(name string) (EffectivePolicy, bool) {
	chain := s.chains[name]
	if chain == nil {
		return EffectivePolicy{}, false
	}
	e := newEffective()
	for _, t := range chain {
		e.apply(t, t.Policy)
	}
	return e, true
}

// ProfilePolicy returns the effective policy of profile p: its tenant's chain, then p itself,
// with the rule of TenantPolicy. MaxInboundCalls is the tenant's.
func (s *Snapshot) ProfilePolicy(p *IVRProfile) (EffectivePolicy, bool) {
	chain := s.chains[p.Tenant]
	if chain == nil {
		return EffectivePolicy{}, false
	}
	e := newEffective()
	for _, t := range chain {
		e.apply(t, t.Policy)
	}
	e.apply(p, p.Policy)
	return e, true
}

func newEffective() EffectivePolicy {
	return EffectivePolicy{Allowed: true, ForbiddenResponse: defaultForbidden, UsageLimit: Unlimited,
		UsageLimitExceededResponse: defaultExceeded, MaxInboundCalls: Unlimited}
}

// apply folds one level, visited root first, into e.
func (e *EffectivePolicy) apply(o Object, p *Policy) {
	if p == nil {
		return
	}
	if p.Allowed != nil && !*p.Allowed && e.Allowed {
		e.Allowed = false
		e.ForbiddenBy = RefOf(o)
		e.ForbiddenResponse = responseOr(p.ForbiddenResponse, defaultForbidden)
	}
	if p.UsageLimit != nil && (e.UsageLimit == Unlimited || *p.UsageLimit < e.UsageLimit) {
		e.UsageLimit = *p.UsageLimit
		e.UsageLimitBy = RefOf(o)
		e.UsageLimitExceededResponse = responseOr(p.UsageLimitExceededResponse, defaultExceeded)
	}
	if p.MaxInboundCalls != nil && (e.MaxInboundCalls == Unlimited || *p.MaxInboundCalls < e.MaxInboundCalls) {
		e.MaxInboundCalls = *p.MaxInboundCalls
		e.MaxInboundCallsBy = RefOf(o)
	}
}

func responseOr(s string, def Response) Response {
	if s == "" {
		return def
	}
	r, err := ParseResponse(s)
	if err != nil {
		return def // unreachable for validated objects
	}
	return r
}
