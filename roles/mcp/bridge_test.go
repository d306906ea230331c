package mcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/caller"
	"github.com/opengvp/gvp/internal/media"
	"github.com/opengvp/gvp/internal/media/g711"
	"github.com/opengvp/gvp/internal/vxml"
)

func TestFramePipe(t *testing.T) {
	frameOf := func(v int16) []int16 {
		f := make([]int16, media.FrameSamples)
		for i := range f {
			f[i] = v
		}
		return f
	}
	for _, tc := range []struct {
		name        string
		writes      int
		wantLen     int
		wantDropped uint64
		wantFirst   int16 // value of the first frame read
	}{
		{"empty", 0, 0, 0, 0},
		{"below capacity", 2, 2, 0, 1},
		{"at capacity", 4, 4, 0, 1},
		{"overflow drops the oldest", 7, 4, 3, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newFramePipe(4)
			for i := 1; i <= tc.writes; i++ {
				p.WriteFrame(frameOf(int16(i)))
			}
			if p.Len() != tc.wantLen || p.Dropped() != tc.wantDropped {
				t.Fatalf("len %d dropped %d, want %d %d", p.Len(), p.Dropped(), tc.wantLen, tc.wantDropped)
			}
			buf := make([]int16, media.FrameSamples)
			for i := 0; i < tc.wantLen; i++ {
				n, err := p.ReadFrame(buf)
				want := tc.wantFirst + int16(i)
				if n != media.FrameSamples || err != nil || buf[0] != want || buf[n-1] != want {
					t.Fatalf("read %d: n %d err %v first %d last %d, want %d", i, n, err, buf[0], buf[n-1], want)
				}
			}
			// Momentarily empty: a full frame of silence, not the end.
			buf[0] = 99
			if n, err := p.ReadFrame(buf); n != media.FrameSamples || err != nil || buf[0] != 0 {
				t.Fatalf("empty read: n %d err %v sample %d, want a silence frame", n, err, buf[0])
			}
			p.WriteFrame(frameOf(5))
			p.Close()
			if n, err := p.ReadFrame(buf); n != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("read after close: n %d err %v, want EOF", n, err)
			}
			p.WriteFrame(frameOf(6))
			if p.Len() != 0 {
				t.Fatalf("write after close was queued")
			}
		})
	}
}

func TestFramePipeShortFrameAndCopy(t *testing.T) {
	p := newFramePipe(2)
	in := []int16{7, 7, 7}
	p.WriteFrame(in)
	in[0] = 1 // the pipe holds a copy
	buf := make([]int16, media.FrameSamples)
	for i := range buf {
		buf[i] = -1
	}
	n, err := p.ReadFrame(buf)
	if n != media.FrameSamples || err != nil || buf[0] != 7 || buf[2] != 7 || buf[3] != 0 || buf[n-1] != 0 {
		t.Fatalf("n %d err %v frame %v..., want 7 7 7 then silence", n, err, buf[:5])
	}
}

// TestFramePipeConcurrent writes and reads from several goroutines (run with -race): the
// pipe never holds more than its capacity and every written frame is read or dropped.
func TestFramePipeConcurrent(t *testing.T) {
	const writers, frames = 4, 500
	p := newFramePipe(bridgePipeFrames)
	var wg sync.WaitGroup
	var read atomic.Int64
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]int16, media.FrameSamples)
		for {
			if _, err := p.ReadFrame(buf); err != nil {
				return
			}
			if buf[0] != 0 {
				read.Add(1)
			}
			if p.Len() > bridgePipeFrames {
				t.Errorf("pipe holds %d frames, capacity %d", p.Len(), bridgePipeFrames)
			}
			select {
			case <-stop:
				for p.Len() > 0 {
					if _, err := p.ReadFrame(buf); err == nil && buf[0] != 0 {
						read.Add(1)
					}
				}
				p.Close()
			default:
			}
		}
	}()
	f := make([]int16, media.FrameSamples)
	f[0] = 1
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range frames {
				p.WriteFrame(f)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-readerDone
	if got := read.Load() + int64(p.Dropped()); got != writers*frames {
		t.Fatalf("read %d + dropped %d = %d, want %d", read.Load(), p.Dropped(), got, writers*frames)
	}
}

func TestEncodeUUI(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"case=42", "636173653d3432;encoding=hex"},
		{"abc-123", "abc-123"},
		{"a b", "612062;encoding=hex"},
	} {
		if got := encodeUUI(tc.in); got != tc.want {
			t.Errorf("encodeUUI(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDialOutcome(t *testing.T) {
	for _, tc := range []struct {
		err        error
		wantStatus string
		wantEvent  string
	}{
		{&DialError{Code: 486}, vxml.TransferBusy, ""},
		{&DialError{Code: 600}, vxml.TransferBusy, ""},
		{&DialError{Code: 408}, vxml.TransferNoAnswer, ""},
		{&DialError{Code: 480}, vxml.TransferNoAnswer, ""},
		{&DialError{Code: 487}, vxml.TransferNoAnswer, ""},
		{&DialError{Code: 503}, vxml.TransferNetworkBusy, ""},
		{&DialError{Code: 404}, vxml.TransferUnknown, ""},
		{fmt.Errorf("dial: %w", errors.New("no route to host")), "", "error.connection.noroute"},
	} {
		res, err := dialOutcome(tc.err)
		var ev *vxml.Event
		switch {
		case tc.wantEvent != "":
			if !errors.As(err, &ev) || ev.Name != tc.wantEvent {
				t.Errorf("%v: err %v, want %s", tc.err, err, tc.wantEvent)
			}
		case err != nil || res.Status != tc.wantStatus:
			t.Errorf("%v: res %+v err %v, want %s", tc.err, res, err, tc.wantStatus)
		}
	}
}

// bridgeDoc transfers to the target given in the Request-URI, then waits 300 ms for a key,
// and posts the outcome (the transfer status and duration, or "hangup", or the error event's
// name, and the key or "none") to /result.
const bridgeDoc = `<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <catch event="connection.disconnect.hangup">
    <var name="status" expr="'hangup'"/><var name="dur" expr="-1"/><var name="key" expr="'none'"/>
    <submit next="/result" method="post" namelist="status dur key"/>
  </catch>
  <catch event="error">
    <var name="status" expr="_event"/><var name="dur" expr="-1"/><var name="key" expr="'none'"/>
    <submit next="/result" method="post" namelist="status dur key"/>
  </catch>
  <catch event="connection.disconnect.transfer">
    <var name="status" expr="'transferred'"/><var name="dur" expr="-1"/><var name="key" expr="'none'"/>
    <submit next="/result" method="post" namelist="status dur key"/>
  </catch>
  <form>
    <transfer name="xfer" destexpr="session.connection.protocol.sip.requesturi['target']" bridge="true" aai="case=42" %s/>
    <field name="k" type="digits?length=1">
      <property name="timeout" value="300ms"/>
      <noinput><assign name="k" expr="'none'"/></noinput>
    </field>
    <block>
      <var name="status" expr="xfer"/><var name="dur" expr="xfer$.duration"/><var name="key" expr="k"/>
      <submit next="/result" method="post" namelist="status dur key"/>
    </block>
  </form>
</vxml>`

// bridgeOutcome is what the document posted.
type bridgeOutcome struct {
	status string
	dur    int
	key    string
}

// bridgeApp serves bridgeDoc with the given <transfer> attributes and collects the outcomes.
type bridgeApp struct {
	url     string
	results chan bridgeOutcome
}

func startBridgeApp(t *testing.T, attrs string) *bridgeApp {
	t.Helper()
	app := &bridgeApp{results: make(chan bridgeOutcome, 4)}
	mux := http.NewServeMux()
	mux.HandleFunc("/bridge.vxml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/voicexml+xml")
		fmt.Fprintf(w, bridgeDoc, attrs)
	})
	mux.HandleFunc("/result", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		d, _ := strconv.Atoi(r.Form.Get("dur"))
		app.results <- bridgeOutcome{status: r.Form.Get("status"), dur: d, key: r.Form.Get("key")}
		w.Header().Set("Content-Type", "application/voicexml+xml")
		fmt.Fprint(w, `<?xml version="1.0"?><vxml version="2.1" xmlns="http://www.w3.org/2001/vxml"><form><block><exit/></block></form></vxml>`)
	})
	ln := listenLoopback(t)
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	app.url = "http://" + ln.Addr().String() + "/bridge.vxml"
	return app
}

func (a *bridgeApp) outcome(t *testing.T) bridgeOutcome {
	t.Helper()
	select {
	case o := <-a.results:
		return o
	case <-time.After(20 * time.Second):
		t.Fatal("the document posted no outcome")
		return bridgeOutcome{}
	}
}

// startBridgeMCP runs the caller's mcp with the real VoiceXML runtime (no TTS).
func startBridgeMCP(t *testing.T, edit func(*Config)) *harness {
	t.Helper()
	return startMCP(t, func(c *Config, _ *Deps) {
		c.VoiceXML.TTSEngine = "none"
		if edit != nil {
			edit(c)
		}
	})
}

// dialBridge calls the bridge document on h with dest as the transfer target.
func dialBridge(t *testing.T, h *harness, app *bridgeApp, dest string) (*caller.Call, *energySink) {
	t.Helper()
	target := h.uri("dialog", ";voicexml="+url.QueryEscape(app.url)+";target="+url.QueryEscape(dest))
	e := &energySink{}
	c, err := dial(t, newAgent(t), target, caller.DialOptions{OnDigit: e.digit})
	if err != nil {
		t.Fatal(err)
	}
	c.Media().SetSink(e)
	return c, e
}

// hungUp waits for the mcp to hang the caller up once the document has ended.
func hungUp(t *testing.T, c *caller.Call) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the caller was not hung up after the document ended")
	}
}

// energySink counts the frames whose RMS level is speech rather than silence, and notes when
// the first one came.
type energySink struct {
	loud  atomic.Int64
	first atomic.Int64 // unix ns of the first loud frame
	mu    sync.Mutex
	keys  string // DTMF the caller received
}

func (e *energySink) digit(d media.Digit) {
	e.mu.Lock()
	e.keys += string(d.Digit)
	e.mu.Unlock()
}

func (e *energySink) digits() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.keys
}

func (e *energySink) WriteFrame(f []int16) {
	var sum float64
	for _, v := range f {
		sum += float64(v) * float64(v)
	}
	if len(f) > 0 && math.Sqrt(sum/float64(len(f))) >= 500 {
		e.loud.Add(1)
		e.first.CompareAndSwap(0, time.Now().UnixNano())
	}
}

// firstLoudAfter returns how long after t0 the first loud frame came (-1 when none did).
func (e *energySink) firstLoudAfter(t0 time.Time) time.Duration {
	if f := e.first.Load(); f != 0 {
		return time.Unix(0, f).Sub(t0)
	}
	return -1
}

// TestBridgeFarEndDisconnect bridges the caller to an announcement on a second mcp: the
// caller hears the announcement through the bridge, the callee hangs up at its end, and the
// document gets far_end_disconnect; nothing of the bridge is left running afterwards.
func TestBridgeFarEndDisconnect(t *testing.T) {
	callee := startMCP(t, nil)
	h := startBridgeMCP(t, nil)
	app := startBridgeApp(t, `connecttimeout="5s"`)

	c, heard := dialBridge(t, h, app, callee.annc(t, ""))
	o := app.outcome(t)
	if o.status != vxml.TransferFarEndDisconnect || o.dur < 1 || o.dur > 3 {
		t.Fatalf("outcome %+v, want far_end_disconnect after about 1.4 s", o)
	}
	// The fixture is about 1.4 s of speech: most of its 70 frames must reach the caller.
	if n := heard.loud.Load(); n < 25 {
		t.Fatalf("caller heard %d loud frames through the bridge, want the announcement", n)
	}
	hungUp(t, c)
	waitFor(t, "calls to end", 10*time.Second, func() bool { return h.m.Active() == 0 && callee.m.Active() == 0 })
	// Nothing of the bridge (the dial goroutine, the outbound leg's dialog watcher) is left.
	waitFor(t, "bridge goroutines to end", 10*time.Second, func() bool {
		buf := make([]byte, 1<<20)
		st := string(buf[:runtime.Stack(buf, true)])
		return !strings.Contains(st, "mcp.(*Call).Bridge") && !strings.Contains(st, "mcp.(*MCP).Dial")
	})
}

// TestBridgeMaxTime ends a bridge to an endless announcement at maxtime: the callee gets a
// BYE and the caller goes on in the document, which does not see the key pressed while
// bridged: that key went to the callee, and a key from the callee reaches the caller.
func TestBridgeMaxTime(t *testing.T) {
	callee := startMCP(t, nil)
	h := startBridgeMCP(t, nil)
	app := startBridgeApp(t, `connecttimeout="5s" maxtime="2s"`)
	c, heard := dialBridge(t, h, app, callee.annc(t, ";repeat=forever"))
	// A key pressed while bridged is for the callee: the dialog does not get it afterwards.
	waitFor(t, "audio through the bridge", 10*time.Second, func() bool { return heard.loud.Load() > 0 })
	if err := c.Media().SendDigits("5", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the key relayed to the callee", 5*time.Second, func() bool {
		calls := callee.m.Calls()
		return len(calls) == 1 && calls[0].DigitsHeard() == "5"
	})
	// And the callee's keys reach the caller.
	if err := callee.m.Calls()[0].Media().SendDigits("7", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the callee's key relayed to the caller", 5*time.Second, func() bool { return heard.digits() == "7" })
	o := app.outcome(t)
	if o.status != vxml.TransferMaxTimeDisconnect || o.dur != 2 || o.key != "none" {
		t.Fatalf("outcome %+v, want maxtime_disconnect after 2 s and no key", o)
	}
	if heard.loud.Load() == 0 {
		t.Fatal("caller heard nothing through the bridge")
	}
	waitFor(t, "the callee to be hung up", 10*time.Second, func() bool { return callee.m.Active() == 0 })
	hungUp(t, c)
}

// TestBridgeNearEndDisconnect hangs the caller up during a bridge: the document sees the
// hangup and the callee gets a BYE.
func TestBridgeNearEndDisconnect(t *testing.T) {
	callee := startMCP(t, nil)
	h := startBridgeMCP(t, nil)
	app := startBridgeApp(t, `connecttimeout="5s"`)
	c, heard := dialBridge(t, h, app, callee.annc(t, ";repeat=forever"))
	waitFor(t, "audio through the bridge", 10*time.Second, func() bool { return heard.loud.Load() > 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if o := app.outcome(t); o.status != "hangup" {
		t.Fatalf("outcome %+v, want the hangup event", o)
	}
	waitFor(t, "the callee to be hung up", 10*time.Second, func() bool { return callee.m.Active() == 0 })
	waitFor(t, "the caller's call to end", 10*time.Second, func() bool { return h.m.Active() == 0 })
}

// testUAS answers every INVITE with a fixed final status and keeps the INVITEs it got. A
// 200 carries an SDP answer (PCMU to a socket that swallows the RTP) and the UAS hangs up
// with BYE after hold.
type testUAS struct {
	addr string
	code atomic.Int32
	hold time.Duration
	// early, when set, makes a 200 come after a 183 with the SDP answer and this much loud
	// early media (RTP to the offer's address).
	early   time.Duration
	mu      sync.Mutex
	invites []*sip.Request
}

func startUAS(t *testing.T, code int, hold time.Duration) *testUAS {
	t.Helper()
	u := &testUAS{hold: hold}
	u.code.Store(int32(code))
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rtp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = conn.LocalAddr().String()
	la := conn.LocalAddr().(*net.UDPAddr)
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(la.Port))
	if err != nil {
		t.Fatal(err)
	}
	dialogs := sipgo.NewDialogServerCache(cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: la.Port}})
	answer := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n", rtp.LocalAddr().(*net.UDPAddr).Port)
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		u.mu.Lock()
		u.invites = append(u.invites, req)
		u.mu.Unlock()
		code := int(u.code.Load())
		if code != 200 {
			_ = tx.Respond(sip.NewResponseFromRequest(req, code, "Refused", nil))
			return
		}
		dlg, err := dialogs.ReadInvite(req, tx)
		if err != nil {
			return
		}
		if u.early > 0 {
			hdr := sip.NewHeader("Content-Type", "application/sdp")
			if err := dlg.Respond(183, "Session Progress", []byte(answer), hdr); err != nil {
				return
			}
			sendLoudRTP(rtp, req.Body(), u.early)
		}
		if err := dlg.RespondSDP([]byte(answer)); err != nil {
			return
		}
		go func() {
			select {
			case <-time.After(u.hold):
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = dlg.Bye(ctx)
			case <-dlg.Context().Done():
			}
		}()
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = dialogs.ReadAck(req, tx) })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) { _ = dialogs.ReadBye(req, tx) })
	go func() { _ = srv.ServeUDP(conn) }()
	t.Cleanup(func() {
		_ = ua.Close()
		_ = conn.Close()
		_ = rtp.Close()
	})
	return u
}

// sendLoudRTP sends d of a loud 1 kHz PCMU tone, a packet every 20 ms, from conn to the
// audio address of the SDP offer.
func sendLoudRTP(conn net.PacketConn, offer []byte, d time.Duration) {
	var host string
	var port int
	for _, l := range strings.Split(string(offer), "\r\n") {
		if v, ok := strings.CutPrefix(l, "c=IN IP4 "); ok {
			host = v
		}
		if v, ok := strings.CutPrefix(l, "m=audio "); ok {
			port, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	to, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return
	}
	pkt := make([]byte, 12+media.FrameSamples)
	pkt[0], pkt[1] = 0x80, 0 // version 2, PCMU
	for i := range media.FrameSamples {
		pkt[12+i] = g711.LinearToUlaw(int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/8000)))
	}
	pkt[8] = 0x5a // SSRC
	for n := 0; n < int(d/(20*time.Millisecond)); n++ {
		binary.BigEndian.PutUint16(pkt[2:], uint16(n))
		binary.BigEndian.PutUint32(pkt[4:], uint32(n*media.FrameSamples))
		_, _ = conn.WriteTo(pkt, to)
		time.Sleep(20 * time.Millisecond)
	}
}

func (u *testUAS) last() *sip.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.invites) == 0 {
		return nil
	}
	return u.invites[len(u.invites)-1]
}

// swallower is a UDP socket that never answers.
func swallower(t *testing.T) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn.LocalAddr().String()
}

// TestBridgeRefused sends the outbound INVITE through mcp.transfer.proxy to a UAS that
// refuses it: the Request-URI stays the destination (which would never answer), the INVITE
// carries the caller's GVP session id and the AAI, and each refusal maps to its status.
func TestBridgeRefused(t *testing.T) {
	uas := startUAS(t, 486, 0)
	h := startBridgeMCP(t, func(c *Config) { c.Transfer.Proxy = uas.addr })
	app := startBridgeApp(t, `connecttimeout="5s"`)
	dest := "sip:agent@" + swallower(t)
	for _, tc := range []struct {
		code int
		want string
	}{
		{486, vxml.TransferBusy},
		{600, vxml.TransferBusy},
		{480, vxml.TransferNoAnswer},
		{503, vxml.TransferNetworkBusy},
		{404, vxml.TransferUnknown},
	} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			uas.code.Store(int32(tc.code))
			c, _ := dialBridge(t, h, app, dest)
			if o := app.outcome(t); o.status != tc.want || o.dur != 0 {
				t.Fatalf("outcome %+v, want %s", o, tc.want)
			}
			hungUp(t, c)
			inv := uas.last()
			if inv == nil {
				t.Fatal("the proxy got no INVITE")
			}
			if got := inv.Recipient.String(); got != dest {
				t.Errorf("Request-URI %s, want %s", got, dest)
			}
			if h := inv.GetHeader(headerSessionID); h == nil || h.Value() != c.SessionID || c.SessionID == "" {
				t.Errorf("%s %v, want the caller's session id %q", headerSessionID, h, c.SessionID)
			}
			if h := inv.GetHeader(headerUUI); h == nil || h.Value() != encodeUUI("case=42") {
				t.Errorf("%s %v, want the AAI", headerUUI, h)
			}
			if r := inv.Route(); r == nil || r.Address.HostPort() != uas.addr {
				t.Errorf("Route %v, want the proxy %s", r, uas.addr)
			}
		})
	}
}

// TestBridgeNoAnswer gives up on a destination that never answers at connecttimeout.
func TestBridgeNoAnswer(t *testing.T) {
	h := startBridgeMCP(t, nil)
	app := startBridgeApp(t, `connecttimeout="1s"`)
	c, _ := dialBridge(t, h, app, "sip:agent@"+swallower(t))
	if o := app.outcome(t); o.status != vxml.TransferNoAnswer {
		t.Fatalf("outcome %+v, want noanswer", o)
	}
	hungUp(t, c)
}

// TestBridgeBadDestination throws error.connection.baddestination for a target that is not
// a SIP URI.
func TestBridgeBadDestination(t *testing.T) {
	h := startBridgeMCP(t, nil)
	app := startBridgeApp(t, `connecttimeout="1s"`)
	c, _ := dialBridge(t, h, app, "not a uri")
	if o := app.outcome(t); !strings.HasPrefix(o.status, "error.connection.baddestination") {
		t.Fatalf("outcome %+v, want error.connection.baddestination", o)
	}
	hungUp(t, c)
}

// TestBridgeRingback: while the callee rings (180, answer 2 s later) the caller hears the
// ringback tone at once; with mcp.transfer.ringback none it hears nothing until the answer.
func TestBridgeRingback(t *testing.T) {
	callee := startMCP(t, func(c *Config, _ *Deps) { c.Answer.Provisional, c.Answer.Delay = 180, 2*time.Second })
	for _, ringback := range []string{"us", "none"} {
		t.Run(ringback, func(t *testing.T) {
			h := startBridgeMCP(t, func(c *Config) { c.Transfer.Ringback = ringback })
			app := startBridgeApp(t, `connecttimeout="5s" maxtime="3s"`)
			t0 := time.Now()
			c, heard := dialBridge(t, h, app, callee.annc(t, ";repeat=forever"))
			waitFor(t, "audio", 10*time.Second, func() bool { return heard.loud.Load() > 0 })
			first := heard.firstLoudAfter(t0)
			if ringback == "us" && first > time.Second {
				t.Errorf("first audio %v after the call began, want the ringback well before the 2 s answer", first)
			}
			if ringback == "none" && first < 1800*time.Millisecond {
				t.Errorf("first audio %v after the call began, want nothing before the 2 s answer", first)
			}
			if o := app.outcome(t); o.status != vxml.TransferMaxTimeDisconnect {
				t.Fatalf("outcome %+v, want maxtime_disconnect", o)
			}
			hungUp(t, c)
		})
	}
}

// TestBridgeEarlyMedia: a callee that answers 183 with SDP and sends audio before its 200 is
// heard by the caller during that time (not the ringback), and the bridge then connects.
func TestBridgeEarlyMedia(t *testing.T) {
	uas := startUAS(t, 200, 3*time.Second)
	uas.early = 1500 * time.Millisecond
	h := startBridgeMCP(t, func(c *Config) { c.Transfer.Ringback = "none" })
	app := startBridgeApp(t, `connecttimeout="5s"`)
	t0 := time.Now()
	c, heard := dialBridge(t, h, app, "sip:agent@"+uas.addr)
	waitFor(t, "early media", 10*time.Second, func() bool { return heard.loud.Load() > 20 })
	if first := heard.firstLoudAfter(t0); first > time.Second {
		t.Errorf("first audio %v after the call began, want the early media from the start", first)
	}
	if o := app.outcome(t); o.status != vxml.TransferFarEndDisconnect {
		t.Fatalf("outcome %+v, want far_end_disconnect once the callee hangs up", o)
	}
	hungUp(t, c)
}

// TestBridgeTransferAudio: the document's transferaudio is fetched and played to the caller
// while the callee rings, in place of the ringback.
func TestBridgeTransferAudio(t *testing.T) {
	callee := startMCP(t, func(c *Config, _ *Deps) { c.Answer.Provisional, c.Answer.Delay = 180, 2*time.Second })
	h := startBridgeMCP(t, func(c *Config) { c.Transfer.Ringback = "none" })
	var fetched atomic.Int32
	audio := httptestFile(t, fixture(t), &fetched)
	app := startBridgeApp(t, `connecttimeout="5s" maxtime="3s" transferaudio="`+audio+`"`)
	t0 := time.Now()
	c, heard := dialBridge(t, h, app, callee.annc(t, ";repeat=forever"))
	waitFor(t, "audio", 10*time.Second, func() bool { return heard.loud.Load() > 0 })
	if first := heard.firstLoudAfter(t0); first > time.Second {
		t.Errorf("first audio %v after the call began, want the transferaudio before the 2 s answer", first)
	}
	if fetched.Load() == 0 {
		t.Error("the transferaudio was never fetched")
	}
	if o := app.outcome(t); o.status != vxml.TransferMaxTimeDisconnect {
		t.Fatalf("outcome %+v, want maxtime_disconnect", o)
	}
	hungUp(t, c)
}

// TestConsultationTransfer: a consultation transfer that connects ends the document with
// connection.disconnect.transfer while the caller stays connected to the callee (it hears the
// callee's announcement after the document ended) until the callee hangs up; then the caller
// gets a BYE and the call's record says transfer. A refused one reports busy to the document.
func TestConsultationTransfer(t *testing.T) {
	callee := startMCP(t, nil)
	h := startBridgeMCP(t, nil)
	app := startBridgeApp(t, `type="consultation" connecttimeout="5s"`)
	c, heard := dialBridge(t, h, app, callee.annc(t, ""))
	if o := app.outcome(t); o.status != "transferred" {
		t.Fatalf("outcome %+v, want connection.disconnect.transfer", o)
	}
	// The fixture is about 1.4 s of speech: the caller hears it after the document ended.
	waitFor(t, "the callee's announcement", 10*time.Second, func() bool { return heard.loud.Load() >= 25 })
	if n := h.m.Active(); n != 1 {
		t.Fatalf("%d active calls during the hand-over, want 1 (the call counts against max_sessions)", n)
	}
	hungUp(t, c)
	waitFor(t, "calls to end", 10*time.Second, func() bool { return h.m.Active() == 0 && callee.m.Active() == 0 })
	var reason billing.EndReason
	for _, rec := range h.pub.Records() {
		if cdr, ok := rec.(*billing.CDR); ok && cdr.State == billing.StateCompleted && cdr.SessionID == c.SessionID {
			reason = cdr.EndReason
		}
	}
	if reason != billing.EndTransfer {
		t.Fatalf("caller's CDR end reason %q, want transfer", reason)
	}
	waitFor(t, "the hand-over goroutine to end", 10*time.Second, func() bool {
		buf := make([]byte, 1<<20)
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "mcp.(*Call).handOver")
	})

	uas := startUAS(t, 486, 0)
	refused := startBridgeApp(t, `type="consultation" connecttimeout="5s"`)
	c, _ = dialBridge(t, h, refused, "sip:agent@"+uas.addr)
	if o := refused.outcome(t); o.status != vxml.TransferBusy {
		t.Fatalf("refused consultation: outcome %+v, want busy", o)
	}
	hungUp(t, c)
}

// httptestFile serves path over HTTP on loopback, counting the requests, and returns its URL.
func httptestFile(t *testing.T, path string, hits *atomic.Int32) string {
	t.Helper()
	ln := listenLoopback(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "audio/wav")
		http.ServeFile(w, r, path)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/connecting.wav"
}

// BenchmarkFramePipe measures one frame through a pipe (write then read).
func BenchmarkFramePipe(b *testing.B) {
	p := newFramePipe(bridgePipeFrames)
	in := make([]int16, media.FrameSamples)
	out := make([]int16, media.FrameSamples)
	b.ReportAllocs()
	for b.Loop() {
		p.WriteFrame(in)
		if _, err := p.ReadFrame(out); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRingbackConfig: mcp.transfer.ringback takes the tone names and none in any case, as the
// tone lookup does, and names the key for anything else.
func TestRingbackConfig(t *testing.T) {
	for _, r := range []string{"us", "UK", "none", "None"} {
		c := DefaultConfig()
		c.Transfer.Ringback = r
		if err := c.Validate("mcp"); err != nil {
			t.Errorf("ringback %q: %v", r, err)
		}
	}
	c := DefaultConfig()
	c.Transfer.Ringback = "beep"
	if err := c.Validate("mcp"); err == nil || !strings.Contains(err.Error(), "mcp.transfer.ringback") {
		t.Errorf("ringback beep: %v, want an error naming mcp.transfer.ringback", err)
	}
}
