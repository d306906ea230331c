package app

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/opengvp/gvp/configs"
	"github.com/opengvp/gvp/internal/config"
)

// TestReferenceMatchesDefaults keeps configs/gvp.yaml honest: it names every key the code
// knows, no other, each with the code's default.
func TestReferenceMatchesDefaults(t *testing.T) {
	def := DefaultConfig()
	want, err := config.Flatten(&def)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(configs.Reference, &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	var walk func(m map[string]any, prefix string)
	walk = func(m map[string]any, prefix string) {
		for k, v := range m {
			key := strings.TrimPrefix(prefix+"."+k, ".")
			if sub, ok := v.(map[string]any); ok {
				walk(sub, key)
				continue
			}
			got[key] = true
		}
	}
	walk(doc, "")
	var missing, extra []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Fatalf("configs/gvp.yaml out of date: missing keys %v, unknown keys %v", missing, extra)
	}

	// Loading the reference as a config file must give exactly the defaults.
	p := filepath.Join(t.TempDir(), "gvp.yaml")
	if err := os.WriteFile(p, configs.Reference, 0o644); err != nil {
		t.Fatal(err)
	}
	fresh := DefaultConfig()
	if _, err := config.Load(&fresh, config.Options{File: p, Environ: []string{}}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fresh, DefaultConfig()) {
		t.Fatalf("configs/gvp.yaml values differ from the defaults:\n got %+v\nwant %+v", fresh, DefaultConfig())
	}
	if err := fresh.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestPresetsAndExamplesValidate(t *testing.T) {
	files, _ := filepath.Glob("../../configs/examples/*.yaml")
	if len(files) < 5 {
		t.Fatalf("want one example per role in configs/examples, found %v", files)
	}
	for _, f := range append(files, "../../configs/local.yaml") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c := DefaultConfig()
			if _, err := config.Load(&c, config.Options{File: f, Environ: []string{}}); err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestValidateNamesKey(t *testing.T) {
	cases := map[string]func(c *Config){
		"rm.sip.listen":          func(c *Config) { c.RM.SIP.Listen = "nowhere" },
		"rm.sip.transports":      func(c *Config) { c.RM.SIP.Transports = []string{"sctp"} },
		"mcp.rtp.port_min":       func(c *Config) { c.MCP.RTP.PortMin = 20001 },
		"mcp.rtp.port_max":       func(c *Config) { c.MCP.RTP.PortMax = 100 },
		"mcp.max_sessions":       func(c *Config) { c.MCP.MaxSessions = 0 },
		"rs.database.driver":     func(c *Config) { c.RS.Database.Driver = "mysql" },
		"configsrv.database.dsn": func(c *Config) { c.Configsrv.Database.Driver = "postgres" },
		"cluster.configsrv_url":  func(c *Config) { c.Cluster.ConfigsrvURL = "ftp://x" },
		"log.level":              func(c *Config) { c.Log.Level = "chatty" },
		"shutdown.drain_timeout": func(c *Config) { c.Shutdown.DrainTimeout = -1 },
		"sd.pool":                func(c *Config) { c.SD.Pool = "" },
	}
	for key, mutate := range cases {
		t.Run(key, func(t *testing.T) {
			c := DefaultConfig()
			mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), `"`+key+`"`) {
				t.Fatalf("want an error naming %q, got %v", key, err)
			}
		})
	}
}

func TestGCPercent(t *testing.T) {
	cfg := DefaultConfig()
	for _, tc := range []struct {
		set     int
		targets []string
		env     string
		want    int
		apply   bool
	}{
		{0, []string{"rm"}, "", RMGCPercent, true},
		{0, []string{"rm"}, "200", 0, false},
		{0, []string{"local"}, "", 0, false},
		{0, []string{"mcp"}, "", 0, false},
		{150, []string{"mcp"}, "200", 150, true},
		{-1, []string{"rm"}, "", -1, true},
	} {
		cfg.GCPercent = tc.set
		got, apply := GCPercent(&cfg, tc.targets, tc.env)
		if got != tc.want || apply != tc.apply {
			t.Errorf("GCPercent(gc_percent=%d, %v, GOGC=%q) = %d, %v; want %d, %v", tc.set, tc.targets, tc.env, got, apply, tc.want, tc.apply)
		}
	}
	cfg.GCPercent = -2
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "gc_percent") {
		t.Errorf("gc_percent -2: %v, want an error naming the key", err)
	}
}
