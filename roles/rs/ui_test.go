package rs

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/testenv"
)

func TestPages(t *testing.T) {
	f := newFixture(t, "")
	cases := []struct {
		path string
		code int
		want []string
	}{
		{"/", 200, []string{"Calls in progress: 2", "sess-c4", "sess-c5", "Tenant t2 (t2)", "<svg", "<rect", "<polyline",
			"t1 / billing", `fetch("/ui/live"`}},
		{"/ui/live", 200, []string{"sess-c4", "Tenants today"}},
		{"/calls?tenant-id=t1&component=rm", 200, []string{"3 CDRs", "sess-c1", "sess-c2", "sess-c3", `value="t1"`}},
		{"/calls?state=completed&page-size=2", 200, []string{"6 CDRs", "older &rarr;"}},
		{"/calls?started-from=bogus", 400, []string{"started-from: invalid time"}},
		{"/calls/sess-c1", 200, []string{"Call sess-c1", "c1-rm", "c1-mcp", "welcome.wav &lt;&amp;&gt;", "dtmf", "Events (2)"}},
		{"/calls/nope", 404, []string{"No CDR for this session"}},
	}
	for _, tc := range cases {
		code, h, body := f.get(t, tc.path)
		if code != tc.code || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s", tc.path, code, h.Get("Content-Type"))
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: no %q in\n%s", tc.path, w, body)
			}
		}
		if strings.Contains(body, "http://") && tc.path != "/" {
			t.Errorf("%s refers to an external asset", tc.path)
		}
	}
}

// TestPagesInChromium loads the pages in headless Chromium: the DOM after scripts ran holds
// the stored data, and the screenshot is a real rendering. Set GVP_TEST_SCREENSHOT_DIR to keep
// the screenshots.
func TestPagesInChromium(t *testing.T) {
	bin := testenv.Service(t, "GVP_TEST_CHROMIUM", "scripts/chromium.sh start")
	f := newFixture(t, "")
	out := os.Getenv("GVP_TEST_SCREENSHOT_DIR")
	if out == "" {
		out = t.TempDir()
	}
	pages := []struct {
		name, path string
		want       []string
	}{
		{"live", "/", []string{"sess-c4", "Tenant t2 (t2)", "Calls in progress: 2", "<polyline"}},
		{"search", "/calls?tenant-id=t1", []string{"sess-c1", "Tenant t1 (t1)", "6 CDRs"}},
		{"call", "/calls/sess-c2", []string{"sess-c2", "c2-mcp", "welcome.wav", "caller_hangup"}},
	}
	for _, p := range pages {
		dom := chromium(t, bin, "--dump-dom", f.srv.URL+p.path)
		for _, w := range p.want {
			if !strings.Contains(dom, w) {
				t.Errorf("%s: DOM lacks %q:\n%s", p.name, w, dom)
			}
		}
		shot := filepath.Join(out, "rs-"+p.name+".png")
		chromium(t, bin, "--screenshot="+shot, "--window-size=1280,900", f.srv.URL+p.path)
		b, err := os.ReadFile(shot)
		if err != nil {
			t.Fatalf("%s: no screenshot: %v", p.name, err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: screenshot: %v", p.name, err)
		}
		if sz := img.Bounds().Size(); sz.X != 1280 || sz.Y != 900 {
			t.Errorf("%s: screenshot %v", p.name, sz)
		}
		// A rendered page has many colours (text, header, tables); a blank one has one.
		colours := map[uint32]bool{}
		for y := 0; y < 900; y += 7 {
			for x := 0; x < 1280; x += 7 {
				r, g, b, _ := img.At(x, y).RGBA()
				colours[r>>8<<16|g>>8<<8|b>>8] = true
			}
		}
		if len(colours) < 10 {
			t.Errorf("%s: screenshot looks blank (%d colours)", p.name, len(colours))
		}
	}
}

// chromium runs headless Chromium on a loopback URL with networking features off.
func chromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
		"--hide-scrollbars", "--user-data-dir=" + t.TempDir()}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}
