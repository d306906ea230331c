package configsrv

import (
	"context"
	"strings"
	"testing"

	"github.com/opengvp/gvp/internal/vxml"
)

// TestDemoAppRuns runs the bundled hello-world application in the interpreter: it must greet,
// read back the digit and disconnect, so `gvp local` answers its demo number with it.
func TestDemoAppRuns(t *testing.T) {
	url, err := writeDemoApp(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := vxml.NewMemoryFetcher()
	f.Add(url, "application/voicexml+xml", helloWorld)
	cfg := vxml.DefaultConfig()
	cfg.Fetcher = f
	in, err := vxml.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := vxml.NewScriptedPlatform("7")
	res := in.Run(context.Background(), p, vxml.SessionInfo{}, url)
	if res.Reason != vxml.ReasonDisconnect {
		t.Fatalf("result %+v, want disconnect", res)
	}
	var texts []string
	for _, pr := range p.Played {
		texts = append(texts, pr.Text())
	}
	got := strings.Join(texts, "|")
	if !strings.Contains(got, "Hello from g v p") || !strings.Contains(got, "You pressed 7") {
		t.Fatalf("played %q", got)
	}
}
