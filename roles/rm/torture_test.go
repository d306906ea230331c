package rm

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	gvpsip "github.com/opengvp/gvp/internal/sip"
)

// tortureDir finds RFC 4475's messages in sipgo's module folder.
func tortureDir(t *testing.T) string {
	t.Helper()
	bi, ok := debug.ReadBuildInfo()
	modcache := os.Getenv("GOMODCACHE")
	if modcache == "" {
		home, _ := os.UserHomeDir()
		modcache = filepath.Join(home, "go", "pkg", "mod")
	}
	version := "v1.7.3"
	if ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/emiago/sipgo" {
				version = d.Version
			}
		}
	}
	dir := filepath.Join(modcache, "github.com", "emiago", "sipgo@"+version, "sip", "testdata", "torture")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("RFC 4475 messages not found (run go mod download): %v", err)
	}
	return dir
}

// offNetwork keeps rm on loopback while it handles messages addressed to other hosts.
func offNetwork(t *testing.T) {
	filter := func(p peer) bool { return p.addr.Addr().IsLoopback() }
	lookup := func(context.Context, string, string) ([]netip.Addr, error) {
		return nil, errors.New("no DNS in tests")
	}
	sendFilter.Store(&filter)
	lookupHook.Store(&lookup)
	t.Cleanup(func() { sendFilter.Store(nil); lookupHook.Store(nil) })
}

func TestTortureMessages(t *testing.T) {
	offNetwork(t)
	mcp := newFakeMCP(t, 200)
	r, _, _, _ := startRM(t, nil, baseDocs+mcpDoc("a", mcp.addr()))
	dir := tortureDir(t)
	parser := sip.NewParser()
	answered400 := 0
	for _, sub := range []string{"invalid", "valid"} {
		files, _ := filepath.Glob(filepath.Join(dir, sub, "*.dat"))
		if len(files) == 0 {
			t.Fatalf("no torture messages in %s", sub)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			name := sub + "/" + filepath.Base(f)
			_, perr := parser.ParseSIP(data)
			_, recoverable := gvpsip.BadRequest(data, "")
			if perr != nil && recoverable {
				// The 400 copies the request's headers verbatim, malformed ones included: read
				// it raw.
				if line := rawExchange(t, r.SIPAddr(), data); !strings.HasPrefix(line, "SIP/2.0 400 ") {
					t.Errorf("%s: got %q, want 400", name, line)
				}
				answered400++
				continue
			}
			newTestUA(t).send(r.SIPAddr(), string(data))
		}
	}
	if answered400 == 0 {
		t.Fatal("no torture message was answered 400")
	}
	// rm still serves.
	ua := newTestUA(t)
	ua.send(r.SIPAddr(), "OPTIONS sip:"+r.SIPAddr()+" SIP/2.0\r\nVia: SIP/2.0/UDP "+ua.addr()+";branch=z9hG4bK-alive\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:rm>\r\nCall-ID: alive\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
	if res := ua.recvResponse(100); res.StatusCode != 200 {
		t.Fatalf("rm after torture: %d", res.StatusCode)
	}
	t.Logf("%d unparsable requests answered 400", answered400)
}

func TestOversizedAndGarbageOverTCP(t *testing.T) {
	r, _, _, _ := startRM(t, nil, baseDocs)
	c, err := net.Dial("tcp", r.SIPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := "INVITE sip:1@x SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK-big\r\nContent-Length: 10000000\r\n\r\n" +
		strings.Repeat("a", 70000)
	_, _ = c.Write([]byte(big))
	// rm closes the connection: reading ends.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("connection with an oversized message stayed open")
			}
			break
		}
	}
	ua := newTestUA(t)
	ua.send(r.SIPAddr(), "OPTIONS sip:"+r.SIPAddr()+" SIP/2.0\r\nVia: SIP/2.0/UDP "+ua.addr()+";branch=z9hG4bK-alive2\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:rm>\r\nCall-ID: alive2\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
	if res := ua.recvResponse(100); res.StatusCode != 200 {
		t.Fatalf("rm after oversized message: %d", res.StatusCode)
	}
}

// rawExchange sends data from a new UDP socket and returns the first line of the answer.
func rawExchange(t *testing.T, to string, data []byte) string {
	t.Helper()
	c, err := net.Dial("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return "no answer: " + err.Error()
	}
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return line
}
