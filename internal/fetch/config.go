package fetch

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/opengvp/gvp/internal/buildinfo"
)

// Defaults for Config.
const (
	// DefaultCacheBytes is the memory the shared response cache may hold:
	// 64 MiB (a few thousand documents and grammars, or about 70 minutes
	// of 8 kHz 16-bit audio prompts).
	DefaultCacheBytes = 64 << 20
	// DefaultMaxEntryBytes is the largest response the cache stores: 8 MiB.
	DefaultMaxEntryBytes = 8 << 20
	// DefaultMaxResponseBytes is the largest response body accepted: 16 MiB.
	DefaultMaxResponseBytes = 16 << 20
	// DefaultMaxRedirects is how many redirects one fetch follows (the
	// limit web browsers use is about 20; 10 is plenty for applications).
	DefaultMaxRedirects = 10
	// DefaultTimeout bounds a fetch whose request carries no timeout and
	// whose context has no deadline: 30 s, VoiceXML's usual fetchtimeout.
	DefaultTimeout = 30 * time.Second
	// DefaultDialTimeout bounds one TCP connection attempt.
	DefaultDialTimeout = 10 * time.Second
	// DefaultTLSHandshakeTimeout bounds one TLS handshake.
	DefaultTLSHandshakeTimeout = 10 * time.Second
	// DefaultIdleConnTimeout closes idle keep-alive connections after 90 s.
	DefaultIdleConnTimeout = 90 * time.Second
	// DefaultMaxIdleConns bounds idle keep-alive connections in total.
	DefaultMaxIdleConns = 256
	// DefaultMaxIdleConnsPerHost bounds idle keep-alive connections per
	// origin: application servers usually are few, calls many.
	DefaultMaxIdleConnsPerHost = 64
	// DefaultMaxConnsPerHost bounds connections (active and idle) per
	// origin, so a burst of calls cannot open thousands of sockets to one
	// web server; further requests wait for a free connection.
	DefaultMaxConnsPerHost = 256
)

// Config configures a Fetcher. Start from DefaultConfig.
type Config struct {
	// UserAgent is sent with every request. Default "gvp-mcp/<version>".
	UserAgent string `yaml:"user_agent"`
	// CacheBytes bounds the shared in-memory cache (LRU by bytes); 0
	// disables caching. Default DefaultCacheBytes.
	CacheBytes int64 `yaml:"cache_bytes"`
	// MaxEntryBytes is the largest body the cache stores. Default
	// DefaultMaxEntryBytes.
	MaxEntryBytes int64 `yaml:"max_entry_bytes"`
	// MaxResponseBytes is the largest body accepted; larger responses fail
	// with ErrTooLarge. Default DefaultMaxResponseBytes.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// MaxRedirects is how many redirects one fetch follows. Default
	// DefaultMaxRedirects.
	MaxRedirects int `yaml:"max_redirects"`
	// Timeout bounds a fetch whose request has no timeout and whose
	// context has no deadline. Default DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// HeuristicFraction enables heuristic freshness (RFC 9111 section
	// 4.2.2) for responses without explicit freshness but with
	// Last-Modified: lifetime = fraction x (Date - Last-Modified), at most
	// one day. 0 (the default) disables it: such responses are stored only
	// to be revalidated.
	HeuristicFraction float64 `yaml:"heuristic_fraction"`
	// AllowFile enables file:// URLs (local mode). Default false.
	AllowFile bool `yaml:"allow_file"`
	// FileRoots, when not empty, restricts file:// URLs to files under
	// these absolute directories (after resolving symbolic links).
	FileRoots []string `yaml:"file_roots"`
	// Policy restricts fetch targets. Default: http and https to any host
	// except DefaultDeny.
	Policy Policy `yaml:"policy"`
	// Credentials are HTTP Basic credentials by URL prefix; the longest
	// matching prefix wins. They can be replaced at run time with
	// Fetcher.SetCredentials.
	Credentials []Credential `yaml:"credentials"`
	// DialTimeout, TLSHandshakeTimeout and IdleConnTimeout tune the
	// transport. Defaults: the Default* constants.
	DialTimeout         time.Duration `yaml:"dial_timeout"`
	TLSHandshakeTimeout time.Duration `yaml:"tls_handshake_timeout"`
	IdleConnTimeout     time.Duration `yaml:"idle_conn_timeout"`
	// MaxIdleConns, MaxIdleConnsPerHost and MaxConnsPerHost bound
	// connection reuse. Defaults: the Default* constants.
	MaxIdleConns        int `yaml:"max_idle_conns"`
	MaxIdleConnsPerHost int `yaml:"max_idle_conns_per_host"`
	MaxConnsPerHost     int `yaml:"max_conns_per_host"`
	// TLSConfig is the client TLS configuration (nil: system roots).
	TLSConfig *tls.Config `yaml:"-"`
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		UserAgent:           "gvp-mcp/" + buildinfo.Version,
		CacheBytes:          DefaultCacheBytes,
		MaxEntryBytes:       DefaultMaxEntryBytes,
		MaxResponseBytes:    DefaultMaxResponseBytes,
		MaxRedirects:        DefaultMaxRedirects,
		Timeout:             DefaultTimeout,
		DialTimeout:         DefaultDialTimeout,
		TLSHandshakeTimeout: DefaultTLSHandshakeTimeout,
		IdleConnTimeout:     DefaultIdleConnTimeout,
		MaxIdleConns:        DefaultMaxIdleConns,
		MaxIdleConnsPerHost: DefaultMaxIdleConnsPerHost,
		MaxConnsPerHost:     DefaultMaxConnsPerHost,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case strings.TrimSpace(c.UserAgent) == "":
		return errors.New("fetch: user_agent is empty")
	case c.CacheBytes < 0:
		return fmt.Errorf("fetch: cache_bytes %d is negative", c.CacheBytes)
	case c.MaxEntryBytes <= 0:
		return fmt.Errorf("fetch: max_entry_bytes %d must be positive", c.MaxEntryBytes)
	case c.MaxResponseBytes <= 0:
		return fmt.Errorf("fetch: max_response_bytes %d must be positive", c.MaxResponseBytes)
	case c.MaxRedirects < 0:
		return fmt.Errorf("fetch: max_redirects %d is negative", c.MaxRedirects)
	case c.Timeout <= 0:
		return fmt.Errorf("fetch: timeout %s must be positive", c.Timeout)
	case c.HeuristicFraction < 0 || c.HeuristicFraction > 1:
		return fmt.Errorf("fetch: heuristic_fraction %g is outside [0, 1]", c.HeuristicFraction)
	case c.DialTimeout <= 0 || c.TLSHandshakeTimeout <= 0 || c.IdleConnTimeout <= 0:
		return errors.New("fetch: dial_timeout, tls_handshake_timeout and idle_conn_timeout must be positive")
	case c.MaxIdleConns <= 0 || c.MaxIdleConnsPerHost <= 0 || c.MaxConnsPerHost < 0:
		return errors.New("fetch: max_idle_conns and max_idle_conns_per_host must be positive, max_conns_per_host not negative")
	}
	for _, r := range c.FileRoots {
		if !filepath.IsAbs(r) {
			return fmt.Errorf("fetch: file_roots entry %q is not an absolute path", r)
		}
	}
	if _, err := compilePolicy(c.Policy, c.AllowFile); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if _, err := compileCredentials(c.Credentials); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	return nil
}

// Credential is an HTTP Basic credential for every URL under Prefix: same
// scheme, same host and port (default ports may be omitted), and a path
// starting with the prefix's path at a segment boundary.
type Credential struct {
	Prefix   string `yaml:"prefix"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// String redacts the password.
func (c Credential) String() string { return c.Prefix + " " + c.Username + ":***" }

type credential struct {
	scheme, host, path string
	header             string // "Basic ..." value
}

func compileCredentials(cs []Credential) ([]credential, error) {
	out := make([]credential, 0, len(cs))
	for _, c := range cs {
		u, err := url.Parse(c.Prefix)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("credential prefix %q is not an absolute http(s) URL", c.Prefix)
		}
		if c.Username == "" || strings.Contains(c.Username, ":") {
			return nil, fmt.Errorf("credential for %q: username must be non-empty without ':'", c.Prefix)
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		out = append(out, credential{
			scheme: u.Scheme,
			host:   hostKey(u),
			path:   path,
			header: "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password)),
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].path) > len(out[j].path) })
	return out, nil
}

// hostKey is u's lower-case host with the scheme's default port removed.
func hostKey(u *url.URL) string {
	h := strings.ToLower(u.Host)
	switch {
	case u.Scheme == "http" && strings.HasSuffix(h, ":80"):
		h = strings.TrimSuffix(h, ":80")
	case u.Scheme == "https" && strings.HasSuffix(h, ":443"):
		h = strings.TrimSuffix(h, ":443")
	}
	return h
}

// match returns the Authorization value for u, or "".
func matchCredential(cs []credential, u *url.URL) string {
	if len(cs) == 0 {
		return ""
	}
	host := hostKey(u)
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	for _, c := range cs {
		if c.scheme != u.Scheme || c.host != host || !strings.HasPrefix(path, c.path) {
			continue
		}
		if len(path) == len(c.path) || strings.HasSuffix(c.path, "/") || path[len(c.path)] == '/' {
			return c.header
		}
	}
	return ""
}
