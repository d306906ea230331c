package vxml

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const testBase = "http://test.invalid/"

var headerRE = regexp.MustCompile(`<!--\s*(assert|input|expect):\s*(.*?)\s*-->`)

// conformanceFetcher serves every file of testdata/conformance.
func conformanceFetcher(t testing.TB) *MemoryFetcher {
	t.Helper()
	f := NewMemoryFetcher()
	files, err := filepath.Glob("testdata/conformance/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		ct := "application/voicexml+xml"
		switch filepath.Ext(p) {
		case ".js":
			ct = "application/ecmascript"
		case ".grxml":
			ct = "application/srgs+xml"
		case ".abnf":
			ct = "application/srgs"
		case ".xml":
			ct = "application/xml"
		}
		f.Add(testBase+filepath.Base(p), ct, b)
	}
	f.AddStatus(testBase+"status500.vxml", 500)
	f.AddHang(testBase + "hang.vxml")
	return f
}

type confCase struct {
	name, assert, input, expect string
}

func loadCases(t testing.TB) []confCase {
	files, err := filepath.Glob("testdata/conformance/*.vxml")
	if err != nil {
		t.Fatal(err)
	}
	var out []confCase
	for _, p := range files {
		base := filepath.Base(p)
		if strings.Contains(base, "--") {
			continue // helper document of another case
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c := confCase{name: base, expect: "pass"}
		for _, m := range headerRE.FindAllStringSubmatch(string(b), -1) {
			switch m[1] {
			case "assert":
				c.assert = m[2]
			case "input":
				c.input = m[2]
			case "expect":
				c.expect = m[2]
			}
		}
		if c.assert == "" {
			t.Errorf("%s: missing <!-- assert: ... --> header", base)
		}
		out = append(out, c)
	}
	return out
}

func testInterpreter(t testing.TB, f Fetcher) *Interpreter {
	cfg := DefaultConfig()
	cfg.Fetcher = f
	cfg.ScriptBudget = 200 * time.Millisecond
	cfg.MaxStepsWithoutInput = 200
	in, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// checkExpect compares a result with an expectation: "pass" (exit with
// value 'pass'), "error NAME" (uncaught error event), or a Reason.
func checkExpect(res *Result, expect string) error {
	switch {
	case expect == "pass":
		if res.Reason != ReasonExit || res.Value != "pass" {
			return fmt.Errorf("got reason=%s value=%v event=%s %s err=%v", res.Reason, res.Value, res.Event, res.Message, res.Err)
		}
	case strings.HasPrefix(expect, "error "):
		want := strings.TrimPrefix(expect, "error ")
		if res.Reason != ReasonError || res.Event != want {
			return fmt.Errorf("got reason=%s event=%q (%s) value=%v, want error %s", res.Reason, res.Event, res.Message, res.Value, want)
		}
	default:
		if string(res.Reason) != expect {
			return fmt.Errorf("got reason=%s value=%v event=%s %s, want %s", res.Reason, res.Value, res.Event, res.Message, expect)
		}
	}
	return nil
}

func dumpTrace(t *testing.T, res *Result) {
	for _, e := range res.Trace {
		t.Logf("  %8v %s", e.At.Round(time.Microsecond), e)
	}
}

// TestConformance runs every document of testdata/conformance. Each one
// checks one specification assertion and decides pass/fail itself.
func TestConformance(t *testing.T) {
	f := conformanceFetcher(t)
	in := testInterpreter(t, f)
	cases := loadCases(t)
	if len(cases) == 0 {
		t.Fatal("no conformance documents")
	}
	for _, c := range cases {
		t.Run(strings.TrimSuffix(c.name, ".vxml"), func(t *testing.T) {
			p := NewScriptedPlatform(c.input)
			info := SessionInfo{LocalURI: "sip:5551000@127.0.0.1", RemoteURI: "sip:alice@127.0.0.1",
				SIPHeaders: map[string]string{"X-Genesys-GVP-Session-ID": "abc;gvp.rm.datanodes=node-id=1"},
				RequestURI: map[string]string{"voicexml": testBase + c.name, "gvp-tenant-id": "80dd"}, AAI: "hello"}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res := in.Run(ctx, p, info, testBase+c.name)
			if err := checkExpect(res, c.expect); err != nil {
				t.Errorf("%s (%s): %v", c.name, c.assert, err)
				dumpTrace(t, res)
			}
		})
	}
}
