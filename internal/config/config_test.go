package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testSIP struct {
	Listen     string   `mapstructure:"listen"`
	Transports []string `mapstructure:"transports"`
}

type testRole struct {
	SIP     testSIP           `mapstructure:"sip"`
	Timeout time.Duration     `mapstructure:"timeout"`
	Max     int               `mapstructure:"max"`
	Token   string            `mapstructure:"token"`
	Labels  map[string]string `mapstructure:"labels"`
}

type testConfig struct {
	Level string   `mapstructure:"level"`
	RM    testRole `mapstructure:"rm"`
}

func defaults() testConfig {
	return testConfig{Level: "info", RM: testRole{SIP: testSIP{Listen: "0.0.0.0:5060", Transports: []string{"udp", "tcp"}}, Timeout: time.Second, Max: 10}}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gvp.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	preset := Source{Name: "preset", YAML: []byte("rm: {sip: {listen: 127.0.0.1:1}, max: 11}\nlevel: debug\n")}
	file := "rm: {sip: {listen: 127.0.0.1:2}, timeout: 5s}\n"
	cases := []struct {
		name    string
		presets []Source
		file    string
		env     []string
		sets    []string
		want    func(c testConfig) bool
	}{
		{"defaults", nil, "", nil, nil, func(c testConfig) bool {
			return c.RM.SIP.Listen == "0.0.0.0:5060" && c.RM.Timeout == time.Second && c.Level == "info"
		}},
		{"preset over defaults", []Source{preset}, "", nil, nil, func(c testConfig) bool {
			return c.RM.SIP.Listen == "127.0.0.1:1" && c.RM.Max == 11 && c.Level == "debug"
		}},
		{"file over preset", []Source{preset}, file, nil, nil, func(c testConfig) bool {
			return c.RM.SIP.Listen == "127.0.0.1:2" && c.RM.Max == 11 && c.RM.Timeout == 5*time.Second
		}},
		{"env over file", []Source{preset}, file, []string{"GVP_RM_SIP_LISTEN=127.0.0.1:3", "GVP_RM_SIP_TRANSPORTS=tcp"}, nil, func(c testConfig) bool {
			return c.RM.SIP.Listen == "127.0.0.1:3" && c.RM.Timeout == 5*time.Second && len(c.RM.SIP.Transports) == 1 && c.RM.SIP.Transports[0] == "tcp"
		}},
		{"flag over env", []Source{preset}, file, []string{"GVP_RM_SIP_LISTEN=127.0.0.1:3"}, []string{"rm.sip.listen=127.0.0.1:4", "rm.max=7"}, func(c testConfig) bool {
			return c.RM.SIP.Listen == "127.0.0.1:4" && c.RM.Max == 7
		}},
		{"free-form map keys", nil, "rm: {labels: {zone: a, rack: b}}\n", nil, []string{"rm.labels.zone=c"}, func(c testConfig) bool {
			return c.RM.Labels["zone"] == "c" && c.RM.Labels["rack"] == "b"
		}},
		{"unrelated env ignored", nil, "", []string{"HOME=/root", "GVP_CONFIG=/x", "GVP_TEST_POSTGRES_DSN=y"}, nil, func(c testConfig) bool {
			return c.RM.Max == 10
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := defaults()
			opts := Options{Presets: tc.presets, Environ: tc.env, Sets: tc.sets}
			if opts.Environ == nil {
				opts.Environ = []string{}
			}
			if tc.file != "" {
				opts.File = writeFile(t, tc.file)
			}
			if _, err := Load(&c, opts); err != nil {
				t.Fatal(err)
			}
			if !tc.want(c) {
				t.Fatalf("unexpected result %+v", c)
			}
		})
	}
}

func TestRejections(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		env     []string
		sets    []string
		wantKey string
	}{
		{"unknown key in file", "rm: {sip: {lisen: x}}\n", nil, nil, "rm.sip.lisen"},
		{"unknown section in file", "rn: {max: 1}\n", nil, nil, "rn.max"},
		{"unknown env", "", []string{"GVP_RM_SIP_LISTN=x"}, nil, "rm_sip_listn"},
		{"unknown flag key", "", nil, []string{"rm.maxx=3"}, "rm.maxx"},
		{"bad duration", "rm: {timeout: soon}\n", nil, nil, "rm.timeout"},
		{"bad int from env", "", []string{"GVP_RM_MAX=many"}, nil, "rm.max"},
		{"bad int from flag", "", nil, []string{"rm.max=1.5x"}, "rm.max"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := defaults()
			opts := Options{Environ: append([]string{}, tc.env...), Sets: tc.sets}
			if tc.file != "" {
				opts.File = writeFile(t, tc.file)
			}
			_, err := Load(&c, opts)
			if err == nil {
				t.Fatalf("want an error naming %s", tc.wantKey)
			}
			if !strings.Contains(err.Error(), tc.wantKey) {
				t.Fatalf("error %q does not name key %q", err, tc.wantKey)
			}
		})
	}
}

func TestSuggestion(t *testing.T) {
	c := defaults()
	_, err := Load(&c, Options{Environ: []string{}, Sets: []string{"rm.sip.lisen=1"}})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "rm.sip.lisen" || !strings.Contains(err.Error(), `did you mean "rm.sip.listen"`) {
		t.Fatalf("want a FieldError with a suggestion, got %v", err)
	}
}

func TestPrintRedacts(t *testing.T) {
	c := defaults()
	c.RM.Token = "s3cret"
	out, err := Print(&c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cret") || !strings.Contains(string(out), Redacted) {
		t.Fatalf("secret not redacted:\n%s", out)
	}
	if !strings.Contains(string(out), "timeout: 1s") {
		t.Fatalf("durations should print as strings:\n%s", out)
	}
}

func TestCheckHostPort(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:0", "0.0.0.0:5060", "[::1]:5070", ":8080"} {
		if err := CheckHostPort("k", ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"127.0.0.1", "host:port", "1.2.3.4:70000", ""} {
		if err := CheckHostPort("k", bad); err == nil {
			t.Errorf("%s: want error", bad)
		}
	}
}
