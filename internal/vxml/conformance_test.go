package vxml

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testBase = "http://test.invalid/"

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
		ct := ConformanceContentType(p)
		f.Add(testBase+filepath.Base(p), ct, b)
	}
	f.AddStatus(testBase+"status500.vxml", 500)
	f.AddHang(testBase + "hang.vxml")
	return f
}

func loadCases(t testing.TB) []ConformanceCase {
	cases, err := LoadConformance("testdata/conformance")
	if err != nil {
		t.Fatal(err)
	}
	return cases
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

// checkExpect compares a result with an expectation (see Result.Check).
func checkExpect(res *Result, expect string) error { return res.Check(expect) }

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
		t.Run(strings.TrimSuffix(c.Name, ".vxml"), func(t *testing.T) {
			p := NewScriptedPlatform(c.Input)
			info := SessionInfo{LocalURI: "sip:5551000@127.0.0.1", RemoteURI: "sip:alice@127.0.0.1",
				SIPHeaders: map[string]string{"X-Genesys-GVP-Session-ID": "abc;gvp.rm.datanodes=node-id=1"},
				RequestURI: map[string]string{"voicexml": testBase + c.Name, "gvp-tenant-id": "80dd"}, AAI: "hello"}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res := in.Run(ctx, p, info, testBase+c.Name)
			if err := checkExpect(res, c.Expect); err != nil {
				t.Errorf("%s (%s): %v", c.Name, c.Assert, err)
				dumpTrace(t, res)
			}
		})
	}
}
