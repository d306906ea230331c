package vxml

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testBase = "http://test.invalid/"

// conformanceFetcher serves every file of testdata/conformance, subfolders included (at
// their relative paths).
func conformanceFetcher(t testing.TB) *MemoryFetcher {
	t.Helper()
	f := NewMemoryFetcher()
	const dir = "testdata/conformance"
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f.Add(testBase+filepath.ToSlash(rel), ConformanceContentType(p), b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.AddStatus(testBase+"status500.vxml", 500)
	f.AddHang(testBase + "hang.vxml")
	return f
}

// echoFetcher answers the suite's echo resource (ConformanceEcho) from the request's values,
// as the mcp's test server does from the HTTP body; everything else goes to the files.
type echoFetcher struct{ *MemoryFetcher }

func (e echoFetcher) Fetch(ctx context.Context, req *FetchRequest) (*FetchResponse, error) {
	u, err := url.Parse(req.URL)
	if err != nil || !strings.HasSuffix(u.Path, "/"+ConformanceEcho) {
		return e.MemoryFetcher.Fetch(ctx, req)
	}
	var got []string
	for _, nv := range req.Values {
		switch v := nv.Value.(type) {
		case FileValue:
			got = append(got, nv.Name+":"+v.ContentType)
		case []byte:
			got = append(got, nv.Name+":application/octet-stream")
		default:
			got = append(got, nv.Name+"="+fmt.Sprint(v))
		}
	}
	enctype := req.Enctype
	if enctype == "" {
		enctype = EnctypeURLEncoded
	}
	body := ConformanceEchoDocument(u.Query().Get("expect"), ConformanceSubmission(req.Method, enctype, got))
	return &FetchResponse{Body: body, ContentType: "application/voicexml+xml", URL: req.URL}, nil
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
	in := testInterpreter(t, echoFetcher{f})
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
