package fetch

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// ErrDenied is wrapped by every error caused by the fetch policy (scheme,
// host or address not allowed). The interpreter sees it as error.badfetch.
var ErrDenied = errors.New("fetch target denied by policy")

// DefaultDeny is the deny list used when Policy.Deny is nil: link-local
// ranges, where cloud instance metadata services answer (169.254.169.254,
// fe80::/10), and the unspecified addresses, which reach the local host.
var DefaultDeny = []string{"169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "::/128"}

// Policy restricts what the fetcher may connect to. It is checked before
// any connection: the scheme and host of every URL (the requested one and
// every redirect target) against the rules, and every address the dialer
// is about to connect to (after DNS resolution) against the address rules,
// so a host name that resolves to a denied address is refused too.
//
// A rule is a CIDR ("10.0.0.0/8", "fd00::/8"), a single address
// ("192.0.2.7"), a host name ("das.example.com"), a wildcard for the
// subdomains of a domain ("*.example.com", which does not match
// "example.com" itself) or "*" (any host name). Names compare
// case-insensitively.
//
// Deny rules win. With an empty Allow list every target not denied is
// allowed; otherwise a target is allowed when its host name matches an
// Allow name rule, or when every address it connects to is inside an Allow
// address rule.
type Policy struct {
	// Schemes are the URL schemes allowed. Default: http and https; "file"
	// is controlled by Config.AllowFile and need not be listed.
	Schemes []string `yaml:"schemes"`
	// Allow lists the rules of allowed targets; empty allows everything
	// not denied.
	Allow []string `yaml:"allow"`
	// Deny lists the rules of denied targets. Nil means DefaultDeny; an
	// empty non-nil list denies nothing.
	Deny []string `yaml:"deny"`
}

// policy is a compiled Policy.
type policy struct {
	schemes    map[string]bool
	allowNames []string // lower case; "*.x" kept as ".x" suffixes, "*" as "*"
	allowNets  []netip.Prefix
	denyNames  []string
	denyNets   []netip.Prefix
	allowAny   bool
}

func compilePolicy(p Policy, allowFile bool) (*policy, error) {
	c := &policy{schemes: map[string]bool{}}
	schemes := p.Schemes
	if len(schemes) == 0 {
		schemes = []string{"http", "https"}
	}
	for _, s := range schemes {
		s = strings.ToLower(strings.TrimSpace(s))
		switch s {
		case "http", "https":
			c.schemes[s] = true
		case "file":
			// file access is governed by AllowFile alone.
		default:
			return nil, fmt.Errorf("policy scheme %q: only http, https and file are supported", s)
		}
	}
	if allowFile {
		c.schemes["file"] = true
	}
	deny := p.Deny
	if deny == nil {
		deny = DefaultDeny
	}
	var err error
	if c.allowNames, c.allowNets, err = compileRules(p.Allow); err != nil {
		return nil, fmt.Errorf("policy allow: %w", err)
	}
	if c.denyNames, c.denyNets, err = compileRules(deny); err != nil {
		return nil, fmt.Errorf("policy deny: %w", err)
	}
	c.allowAny = len(p.Allow) == 0
	return c, nil
}

func compileRules(rules []string) (names []string, nets []netip.Prefix, err error) {
	for _, r := range rules {
		r = strings.TrimSpace(r)
		if pfx, err := netip.ParsePrefix(r); err == nil {
			nets = append(nets, pfx.Masked())
			continue
		}
		if a, err := netip.ParseAddr(r); err == nil {
			a = a.Unmap()
			nets = append(nets, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		name := strings.TrimSuffix(strings.ToLower(r), ".")
		switch {
		case name == "*":
		case strings.HasPrefix(name, "*."):
			name = name[1:]
			if strings.Contains(name[1:], "*") || len(name) < 2 {
				return nil, nil, fmt.Errorf("rule %q: a wildcard is allowed only as a leading \"*.\"", r)
			}
		case name == "" || strings.ContainsAny(name, "*/ :[]"):
			return nil, nil, fmt.Errorf("rule %q is neither a CIDR, an address nor a host name pattern", r)
		}
		names = append(names, name)
	}
	return names, nets, nil
}

func matchName(patterns []string, host string) string {
	for _, p := range patterns {
		switch {
		case p == "*":
			return p
		case p[0] == '.':
			if strings.HasSuffix(host, p) {
				return "*" + p
			}
		case p == host:
			return p
		}
	}
	return ""
}

func matchNet(nets []netip.Prefix, a netip.Addr) (netip.Prefix, bool) {
	for _, n := range nets {
		if n.Contains(a) {
			return n, true
		}
	}
	return netip.Prefix{}, false
}

// normHost returns the lower-case host name of u without a trailing dot.
func normHost(u *url.URL) string {
	return strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
}

// checkURL applies the scheme and host rules to u before a connection.
// Address rules for host names are applied at dial time by checkAddr.
func (p *policy) checkURL(u *url.URL) error {
	scheme := strings.ToLower(u.Scheme)
	if !p.schemes[scheme] {
		if scheme == "file" {
			return fmt.Errorf("%w: file URLs are disabled (fetch.allow_file)", ErrDenied)
		}
		return fmt.Errorf("%w: scheme %q is not allowed", ErrDenied, u.Scheme)
	}
	if scheme == "file" {
		return nil
	}
	host := normHost(u)
	if host == "" {
		return fmt.Errorf("%w: URL has no host", ErrDenied)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return p.checkAddr(host, a)
	}
	if m := matchName(p.denyNames, host); m != "" {
		return fmt.Errorf("%w: host %s matches deny rule %s", ErrDenied, host, m)
	}
	if p.allowAny || matchName(p.allowNames, host) != "" || len(p.allowNets) > 0 {
		// With address allow rules the decision for a name waits for
		// its addresses (checkAddr at dial time).
		return nil
	}
	return fmt.Errorf("%w: host %s matches no allow rule", ErrDenied, host)
}

// checkAddr applies the address rules to a, the address that host (a name
// or an address literal) is about to be connected to.
func (p *policy) checkAddr(host string, a netip.Addr) error {
	a = a.Unmap().WithZone("")
	if n, ok := matchNet(p.denyNets, a); ok {
		return fmt.Errorf("%w: address %s of %s is in denied range %s", ErrDenied, a, host, n)
	}
	if p.allowAny || matchName(p.allowNames, host) != "" {
		return nil
	}
	if _, ok := matchNet(p.allowNets, a); ok {
		return nil
	}
	return fmt.Errorf("%w: address %s of %s matches no allow rule", ErrDenied, a, host)
}
