// Package config loads gvp's configuration: one viper instance, a default for every key, and the
// precedence defaults < preset < --config file < environment (GVP_<KEY> with dots as
// underscores, e.g. GVP_RM_SIP_LISTEN) < flags (--set key=value). Unknown keys and values that
// do not decode are rejected with an error naming the key.
//
// The shape of the configuration is a Go struct whose fields carry `mapstructure` tags; the
// struct returned by the caller's DefaultConfig() is the single source of the defaults.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"gopkg.in/yaml.v3"
)

// EnvPrefix is the prefix of environment variables that override configuration keys.
const EnvPrefix = "GVP"

// FieldError is a configuration error about one key.
type FieldError struct {
	Key    string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("config key %q: %s", e.Key, e.Reason) }

// Errorf returns a *FieldError for key.
func Errorf(key, format string, args ...any) error {
	return &FieldError{Key: key, Reason: fmt.Sprintf(format, args...)}
}

// Source is one layer of configuration above the defaults.
type Source struct {
	// Name describes the layer in errors (a file path, "local preset").
	Name string
	// YAML is the layer's content.
	YAML []byte
}

// Options select the layers Load merges over the defaults.
type Options struct {
	// Presets are built-in layers applied right above the defaults, in order.
	Presets []Source
	// File is the --config file; empty for none.
	File string
	// Environ is the environment to read overrides from (os.Environ() when nil).
	Environ []string
	// Sets are --set key=value flags, applied last.
	Sets []string
}

// Load fills out (a pointer to a struct already holding the defaults) from the layers in opts.
// It returns the viper instance holding the merged settings.
func Load(out any, opts Options) (*viper.Viper, error) {
	defaults, err := Flatten(out)
	if err != nil {
		return nil, err
	}
	free := freeFormPrefixes(reflect.TypeOf(out), "")
	v := viper.New()
	for k, val := range defaults {
		v.SetDefault(k, val)
	}
	layers := append([]Source(nil), opts.Presets...)
	if opts.File != "" {
		b, err := os.ReadFile(opts.File)
		if err != nil {
			return nil, fmt.Errorf("read config file: %w", err)
		}
		layers = append(layers, Source{Name: opts.File, YAML: b})
	}
	for _, l := range layers {
		m := map[string]any{}
		if err := yaml.Unmarshal(l.YAML, &m); err != nil {
			return nil, fmt.Errorf("parse %s: %w", l.Name, err)
		}
		for _, k := range flattenMap(m, "") {
			if err := checkKnown(k, defaults, free); err != nil {
				return nil, fmt.Errorf("%s: %w", l.Name, err)
			}
		}
		v.SetConfigType("yaml")
		if err := v.MergeConfig(bytes.NewReader(l.YAML)); err != nil {
			return nil, fmt.Errorf("merge %s: %w", l.Name, err)
		}
	}
	// Environment: only known keys are mapped, so an unknown GVP_ variable is reported.
	environ := opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	envKeys := map[string]string{}
	for k := range defaults {
		envKeys[EnvName(k)] = k
	}
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix+"_") || isReservedEnv(name) {
			continue
		}
		key, known := envKeys[name]
		if !known {
			return nil, fmt.Errorf("environment variable %s: %w", name, &FieldError{Key: strings.ToLower(strings.TrimPrefix(name, EnvPrefix+"_")), Reason: "unknown key"})
		}
		if err := mergeKey(v, key, parseScalar(val, defaults[key])); err != nil {
			return nil, err
		}
	}
	for _, s := range opts.Sets {
		key, val, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("--set %q: want key=value", s)
		}
		key = strings.TrimSpace(key)
		if err := checkKnown(key, defaults, free); err != nil {
			return nil, fmt.Errorf("--set: %w", err)
		}
		if err := mergeKey(v, key, parseScalar(val, defaults[key])); err != nil {
			return nil, err
		}
	}
	if err := Decode(v, out); err != nil {
		return nil, err
	}
	return v, nil
}

// mergeKey deep-merges one dotted key into v's configuration layer, so that setting one entry of
// a map keeps its siblings (viper's Set would replace the whole map) and later layers win.
func mergeKey(v *viper.Viper, key string, val any) error {
	parts := strings.Split(key, ".")
	var m any = val
	for i := len(parts) - 1; i >= 0; i-- {
		m = map[string]any{parts[i]: m}
	}
	if err := v.MergeConfigMap(m.(map[string]any)); err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	return nil
}

// reservedEnv are GVP_ variables that are not configuration keys.
var reservedEnv = []string{"GVP_CONFIG", "GVP_CTL_", "GVP_TEST_"}

func isReservedEnv(name string) bool {
	for _, p := range reservedEnv {
		if name == p || (strings.HasSuffix(p, "_") && strings.HasPrefix(name, p)) {
			return true
		}
	}
	return false
}

// EnvName is the environment variable that overrides key.
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// parseScalar turns a flag or environment string into the type of the key's default, so that
// lists can be given as comma-separated values.
func parseScalar(s string, def any) any {
	switch def.(type) {
	case []string:
		if s == "" {
			return []string{}
		}
		parts := strings.Split(s, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts
	}
	return s
}

func checkKnown(key string, defaults map[string]any, free []string) error {
	if _, ok := defaults[key]; ok {
		return nil
	}
	for _, p := range free {
		if key == p || strings.HasPrefix(key, p+".") {
			return nil
		}
	}
	// A section name given as a whole (e.g. "rm:" with nothing under it) is fine.
	for k := range defaults {
		if strings.HasPrefix(k, key+".") {
			return nil
		}
	}
	return &FieldError{Key: key, Reason: "unknown key" + suggest(key, defaults)}
}

func suggest(key string, defaults map[string]any) string {
	best, bestD := "", 4
	for k := range defaults {
		if d := levenshtein(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Decode decodes the merged settings of v into out, rejecting values that do not fit.
func Decode(v *viper.Viper, out any) error {
	err := v.Unmarshal(out, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.WeaklyTypedInput = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		)
	})
	if err != nil {
		return fmt.Errorf("invalid configuration: %s", cleanDecodeError(err))
	}
	return nil
}

// cleanDecodeError turns mapstructure's multi-line report into one line per key.
func cleanDecodeError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "decoding failed due to the following error(s):")
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// Flatten returns every key of the struct pointed to by cfg with its current value, keyed by
// dotted mapstructure names ("rm.sip.listen").
func Flatten(cfg any) (map[string]any, error) {
	rv := reflect.ValueOf(cfg)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil, errors.New("config: Flatten needs a struct")
	}
	out := map[string]any{}
	flattenStruct(rv, "", out)
	return out, nil
}

func flattenStruct(rv reflect.Value, prefix string, out map[string]any) {
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		if !f.IsExported() {
			continue
		}
		name := tagName(f)
		if name == "-" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		fv := rv.Field(i)
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeOf(time.Time{}) {
			flattenStruct(fv, key, out)
			continue
		}
		out[key] = fv.Interface()
	}
}

// freeFormPrefixes lists the keys whose values are maps: anything below them is accepted.
func freeFormPrefixes(rt reflect.Type, prefix string) []string {
	if rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	var out []string
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		if !f.IsExported() || tagName(f) == "-" {
			continue
		}
		key := tagName(f)
		if prefix != "" {
			key = prefix + "." + key
		}
		switch f.Type.Kind() {
		case reflect.Struct:
			out = append(out, freeFormPrefixes(f.Type, key)...)
		case reflect.Map:
			out = append(out, key)
		}
	}
	return out
}

func tagName(f reflect.StructField) string {
	tag := f.Tag.Get("mapstructure")
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

func flattenMap(m map[string]any, prefix string) []string {
	var keys []string
	for k, val := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := val.(map[string]any); ok && len(sub) > 0 {
			keys = append(keys, flattenMap(sub, key)...)
			continue
		}
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}

// secretWords mark keys whose values are redacted when printed.
var secretWords = []string{"password", "passcode", "token", "secret", "dsn"}

// IsSecret reports whether key holds a credential.
func IsSecret(key string) bool {
	last := key[strings.LastIndex(key, ".")+1:]
	for _, w := range secretWords {
		if strings.Contains(last, w) {
			return true
		}
	}
	return false
}

// Redacted is what secret values print as.
const Redacted = "<redacted>"

// Print renders the effective configuration in cfg as YAML, with secrets redacted.
func Print(cfg any) ([]byte, error) {
	flat, err := Flatten(cfg)
	if err != nil {
		return nil, err
	}
	root := map[string]any{}
	for k, val := range flat {
		if IsSecret(k) {
			if s, ok := val.(string); !ok || s != "" {
				val = Redacted
			}
		}
		if d, ok := val.(time.Duration); ok {
			val = d.String()
		}
		parts := strings.Split(k, ".")
		m := root
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = val
	}
	return yaml.Marshal(root)
}

// CheckHostPort returns a *FieldError for key unless v is host:port with a numeric port.
func CheckHostPort(key, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return Errorf(key, "%q is not host:port: %v", v, err)
	}
	_ = host
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return Errorf(key, "%q: port %q is not a number from 0 to 65535", v, port)
	}
	return nil
}

// CheckURL returns a *FieldError for key unless v is an absolute http or https URL.
func CheckURL(key, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Errorf(key, "%q is not an http(s) URL", v)
	}
	return nil
}
