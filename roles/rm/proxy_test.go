package rm

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/opengvp/gvp/internal/billing"
)

const baseDocs = `
kind: Tenant
name: t100
id: 80dd
defaultApplication: IVRAppDefault
---
kind: Pool
name: MCP_LRG
loadBalance: round-robin
monitor: {method: options, interval: 200ms, failures: 2}
---
kind: IVRProfile
name: IVRAppDefault
tenant: t100
initialPage: http://127.0.0.1:8000/default.vxml
---
kind: IVRProfile
name: billing
tenant: t100
initialPage: http://127.0.0.1:8000/billing.vxml?x=1
parameters: {gvp.config.foo: bar}
policy: {usageLimit: 2}
---
kind: DID
tenant: t100
pattern: "5551000"
profile: billing
`

func mcpDoc(name, addr string) string {
	return "\n---\nkind: MCP\nname: " + name + "\npool: MCP_LRG\naddress: " + addr + "\ncapacity: 10\n"
}

func TestCallThroughRM(t *testing.T) {
	mcp := newFakeMCP(t, 200)
	r, _, pub, _ := startRM(t, nil, baseDocs+mcpDoc("mcp-0", mcp.addr()))
	caller := newTestUA(t)
	rm := r.SIPAddr()

	caller.invite(rm, "sip:5551000@"+rm+";gvp-tenant-id=80dd")
	trying := caller.recvResponse(100)
	if trying.StatusCode != 100 {
		t.Fatalf("first response %d, want 100", trying.StatusCode)
	}
	inv := <-mcp.inviteCh
	ruri := inv.Recipient.String()
	if !strings.HasPrefix(ruri, "sip:dialog@"+mcp.addr()+";voicexml=http://127.0.0.1:8000/billing.vxml%3Fx%3D1") ||
		!strings.Contains(ruri, "gvp.config.foo=bar") || strings.Contains(ruri, "gvp-tenant-id") {
		t.Fatalf("Request-URI to mcp: %s", ruri)
	}
	if to := inv.To().Address.User; to != "5551000" {
		t.Fatalf("To changed: %s", inv.To().Value())
	}
	sid := inv.GetHeader("X-Genesys-GVP-Session-ID")
	if sid == nil || !strings.HasSuffix(sid.Value(), ";gvp.rm.datanodes=node-id=1") {
		t.Fatalf("session id header: %v", sid)
	}
	if rr := inv.RecordRoute(); rr == nil || rr.Address.Port != r.px.port || !rr.Address.UriParams.Has("lr") {
		t.Fatalf("Record-Route: %v", rr)
	}
	if n := len(inv.GetHeaders("Via")); n != 2 {
		t.Fatalf("mcp sees %d Vias, want 2", n)
	}
	if mf := inv.MaxForwards().Val(); mf != 69 {
		t.Fatalf("Max-Forwards %d, want 69", mf)
	}
	ok := caller.recvResponse(180)
	if ok.StatusCode == 180 {
		ok = caller.recvResponse(200)
	}
	if ok.StatusCode != 200 || len(ok.GetHeaders("Via")) != 1 {
		t.Fatalf("caller got %d with %d Vias", ok.StatusCode, len(ok.GetHeaders("Via")))
	}
	if r.ActiveCalls() != 1 {
		t.Fatalf("active calls %d", r.ActiveCalls())
	}
	ack := caller.inDialog(sip.ACK, ok, 1)
	caller.sendMsg(firstHop(ack), ack)
	waitFor(t, "ACK at mcp", func() bool { return mcp.count("ACK") == 1 })

	// re-INVITE and INFO cross rm.
	re := caller.inDialog(sip.INVITE, ok, 2)
	caller.sendMsg(firstHop(re), re)
	if res := caller.recvResponse(200); res.StatusCode != 200 || res.CSeq().SeqNo != 2 {
		t.Fatalf("re-INVITE answered %d", res.StatusCode)
	}
	info := caller.inDialog(sip.INFO, ok, 3)
	caller.sendMsg(firstHop(info), info)
	if res := caller.recvResponse(200); res.CSeq().MethodName != sip.INFO {
		t.Fatalf("INFO answer %v", res.StartLine())
	}

	bye := caller.inDialog(sip.BYE, ok, 4)
	caller.sendMsg(firstHop(bye), bye)
	if res := caller.recvResponse(200); res.CSeq().MethodName != sip.BYE {
		t.Fatalf("BYE answer %v", res.StartLine())
	}
	if mcp.count("bye") != 1 {
		t.Fatal("BYE did not reach the mcp")
	}
	waitFor(t, "call end", func() bool { return r.ActiveCalls() == 0 })
	waitFor(t, "billing records", func() bool { return len(pub.Records()) >= 2 }) // published off the SIP path
	recs := pub.Records()
	if len(recs) != 2 {
		t.Fatalf("%d billing records, want start and end", len(recs))
	}
	end := recs[1].(*billing.CDR)
	if end.State != billing.StateCompleted || end.EndReason != billing.EndCallerHangup || end.Profile != "billing" ||
		end.MCP != "mcp-0" || !strings.HasPrefix(sid.Value(), end.SessionID) {
		t.Fatalf("end CDR %+v", end)
	}
	if end.LocalURI != "sip:5551000@"+rm || end.RemoteURI != "sip:caller@127.0.0.1" || end.ANI != "caller" || end.DNIS != "5551000" {
		t.Fatalf("end CDR parties: local %q remote %q ANI %q DNIS %q", end.LocalURI, end.RemoteURI, end.ANI, end.DNIS)
	}
}

func TestRejectWithoutProfile(t *testing.T) {
	mcp := newFakeMCP(t, 200)
	docs := `
kind: Pool
name: MCP_LRG
monitor: {method: none}
` + mcpDoc("mcp-0", mcp.addr())
	r, _, _, _ := startRM(t, func(c *Config) { c.NoProfileResponse = "404;No Application" }, docs)
	caller := newTestUA(t)
	caller.invite(r.SIPAddr(), "sip:999@"+r.SIPAddr())
	res := caller.recvResponse(200)
	if res.StatusCode != 404 || res.Reason != "No Application" {
		t.Fatalf("got %d %s, want 404 No Application", res.StatusCode, res.Reason)
	}
	if mcp.count("invite") != 0 {
		t.Fatal("an mcp was contacted")
	}
	if r.ActiveCalls() != 0 {
		t.Fatal("call leaked")
	}
}

func TestUsageLimit(t *testing.T) {
	mcp := newFakeMCP(t, 200)
	r, _, _, _ := startRM(t, nil, baseDocs+mcpDoc("mcp-0", mcp.addr()))
	rm := r.SIPAddr()
	caller := newTestUA(t)
	var answers []*sip.Response
	for i := 0; i < 2; i++ {
		caller.invite(rm, "sip:5551000@"+rm+";gvp-tenant-id=80dd")
		answers = append(answers, caller.recvResponse(200))
		if answers[i].StatusCode != 200 {
			t.Fatalf("call %d: %d", i, answers[i].StatusCode)
		}
	}
	caller.invite(rm, "sip:5551000@"+rm+";gvp-tenant-id=80dd")
	if res := caller.recvResponse(200); res.StatusCode != 480 {
		t.Fatalf("third call: %d, want 480", res.StatusCode)
	}
	// Another profile of the tenant is not limited.
	caller.invite(rm, "sip:123@"+rm+";gvp-tenant-id=80dd")
	if res := caller.recvResponse(200); res.StatusCode != 200 {
		t.Fatalf("default profile call: %d", res.StatusCode)
	}
	bye := caller.inDialog(sip.BYE, answers[0], 2)
	caller.sendMsg(firstHop(bye), bye)
	caller.recvResponse(200)
	caller.invite(rm, "sip:5551000@"+rm+";gvp-tenant-id=80dd")
	if res := caller.recvResponse(200); res.StatusCode != 200 {
		t.Fatalf("fourth call after a hang-up: %d, want 200", res.StatusCode)
	}
}

func TestFailoverOn503AndSilence(t *testing.T) {
	bad := newFakeMCP(t, 503)
	silent := newFakeMCP(t, 0)
	good := newFakeMCP(t, 200)
	docs := strings.Replace(baseDocs, "interval: 200ms", "interval: 1h", 1) +
		mcpDoc("a", bad.addr()) + mcpDoc("b", silent.addr()) + mcpDoc("c", good.addr())
	r, _, _, reg := startRM(t, nil, docs)
	rm := r.SIPAddr()
	caller := newTestUA(t)
	for i := 0; i < 3; i++ {
		caller.invite(rm, "sip:777@"+rm+";gvp-tenant-id=80dd")
		res := caller.recvResponse(180)
		for res.StatusCode < 200 {
			res = caller.recvResponse(180)
		}
		if res.StatusCode != 200 {
			t.Fatalf("call %d: caller saw %d", i, res.StatusCode)
		}
		bye := caller.inDialog(sip.BYE, res, 2)
		caller.sendMsg(firstHop(bye), bye)
		caller.recvResponse(200)
	}
	if good.count("invite") != 3 {
		t.Fatalf("good mcp got %d INVITEs", good.count("invite"))
	}
	waitFor(t, "calls to end", func() bool { return r.ActiveCalls() == 0 })
	if got := counterValue(t, reg, "gvp_rm_failovers_total"); got < 3 {
		t.Fatalf("failovers %v", got)
	}
}

func TestNoMemberLeft503(t *testing.T) {
	bad := newFakeMCP(t, 500)
	r, _, _, _ := startRM(t, nil, baseDocs+mcpDoc("a", bad.addr()))
	caller := newTestUA(t)
	caller.invite(r.SIPAddr(), "sip:777@"+r.SIPAddr()+";gvp-tenant-id=80dd")
	res := caller.recvResponse(200)
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("got %s, want 503 with Retry-After", res.StartLine())
	}
	waitFor(t, "call release", func() bool { return r.ActiveCalls() == 0 })
}

func TestCancelReleasesCall(t *testing.T) {
	mcp := newFakeMCP(t, 0) // never answers finally
	r, _, _, _ := startRM(t, func(c *Config) { c.MCP.InviteTimeout = 5 * time.Second }, baseDocs+mcpDoc("a", mcp.addr()))
	rm := r.SIPAddr()
	caller := newTestUA(t)
	id, branch := caller.invite(rm, "sip:5551000@"+rm+";gvp-tenant-id=80dd")
	inv := <-mcp.inviteCh
	// The mcp rings so that rm may CANCEL.
	mcp.sendMsg(mcp.respAddr(inv), sip.NewResponseFromRequest(inv, 180, "Ringing", nil))
	caller.recvResponse(180)
	caller.send(rm, "CANCEL sip:5551000@"+rm+";gvp-tenant-id=80dd SIP/2.0\r\nVia: SIP/2.0/UDP "+caller.addr()+";branch="+branch+";rport\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag=caller-"+id+"\r\nTo: <sip:5551000@"+rm+">\r\nCall-ID: "+id+
		"\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n")
	c := mcp.recvRequestKept(t, sip.CANCEL)
	mcp.sendMsg(mcp.respAddr(c), sip.NewResponseFromRequest(c, 200, "OK", nil))
	mcp.sendMsg(mcp.respAddr(inv), sip.NewResponseFromRequest(inv, 487, "Request Terminated", nil))
	for {
		res := caller.recvResponse(200)
		if res.CSeq().MethodName == sip.INVITE {
			if res.StatusCode != 487 {
				t.Fatalf("INVITE answered %d, want 487", res.StatusCode)
			}
			break
		}
	}
	waitFor(t, "call release", func() bool { return r.ActiveCalls() == 0 && r.px.counters.tenantCalls("t100") == 0 })
}

// recvRequestKept waits for a request of method recorded by the fake mcp.
func (f *fakeMCP) recvRequestKept(t *testing.T, m sip.RequestMethod) *sip.Request {
	t.Helper()
	var got *sip.Request
	waitFor(t, string(m)+" at mcp", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, r := range f.others {
			if r.Method == m {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

func TestDialogTimeoutReleases(t *testing.T) {
	mcp := newFakeMCP(t, 200)
	r, _, pub, _ := startRM(t, nil, baseDocs+mcpDoc("a", mcp.addr()))
	caller := newTestUA(t)
	caller.invite(r.SIPAddr(), "sip:5551000@"+r.SIPAddr()+";gvp-tenant-id=80dd")
	if res := caller.recvResponse(200); res.StatusCode != 200 {
		t.Fatal(res.StartLine())
	}
	if n := r.px.sweepIdle(time.Now()); n != 0 {
		t.Fatalf("swept %d fresh calls", n)
	}
	if n := r.px.sweepIdle(time.Now().Add(3 * time.Hour)); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	if r.ActiveCalls() != 0 || r.px.counters.tenantCalls("t100") != 0 {
		t.Fatal("counters not released")
	}
	waitFor(t, "end record", func() bool { return len(pub.Records()) >= 2 })
	last := pub.Records()[len(pub.Records())-1].(*billing.CDR)
	if last.EndDetail != "dialog timeout" {
		t.Fatalf("end CDR %+v", last)
	}
}

func TestDrain(t *testing.T) {
	mcp := newFakeMCP(t, 200)
	r, _, _, _ := startRM(t, nil, baseDocs+mcpDoc("a", mcp.addr()))
	rm := r.SIPAddr()
	caller := newTestUA(t)
	caller.invite(rm, "sip:5551000@"+rm+";gvp-tenant-id=80dd")
	ok := caller.recvResponse(200)
	drained := make(chan error, 1)
	go func() { drained <- r.Drain(context.Background()) }()
	waitFor(t, "draining", func() bool { return r.px.draining.Load() })
	caller.invite(rm, "sip:5551000@"+rm+";gvp-tenant-id=80dd")
	if res := caller.recvResponse(200); res.StatusCode != 503 || res.GetHeader("Retry-After").Value() != "30" {
		t.Fatalf("new call while draining: %s", res.StartLine())
	}
	select {
	case <-drained:
		t.Fatal("drain returned with a call in progress")
	default:
	}
	bye := caller.inDialog(sip.BYE, ok, 2)
	caller.sendMsg(firstHop(bye), bye)
	if res := caller.recvResponse(200); res.StatusCode != 200 {
		t.Fatal(res.StartLine())
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("drain did not return after the last call")
	}
}

func TestConfigChangeReroutes(t *testing.T) {
	a := newFakeMCP(t, 200)
	b := newFakeMCP(t, 200)
	r, src, _, _ := startRM(t, nil, baseDocs+mcpDoc("a", a.addr()))
	rm := r.SIPAddr()
	caller := newTestUA(t)
	caller.invite(rm, "sip:123@"+rm+";gvp-tenant-id=80dd")
	caller.recvResponse(200)
	if err := src.SetDocuments(2, []byte(baseDocs+mcpDoc("b", b.addr()))); err != nil {
		t.Fatal(err)
	}
	caller.invite(rm, "sip:123@"+rm+";gvp-tenant-id=80dd")
	caller.recvResponse(200)
	if a.count("invite") != 1 || b.count("invite") != 1 {
		t.Fatalf("invites a=%d b=%d, want 1 and 1", a.count("invite"), b.count("invite"))
	}
}

func TestMonitorMarksDownAndUp(t *testing.T) {
	m := newFakeMCP(t, 200)
	r, _, _, reg := startRM(t, nil, baseDocs+mcpDoc("a", m.addr()))
	mem := r.px.pools.all["a"]
	m.silent.Store(true)
	waitFor(t, "member down", func() bool { return !mem.up.Load() })
	if v := gaugeValue(t, reg, "gvp_rm_resource_up"); v != 0 {
		t.Fatalf("gvp_rm_resource_up %v", v)
	}
	caller := newTestUA(t)
	caller.invite(r.SIPAddr(), "sip:123@"+r.SIPAddr()+";gvp-tenant-id=80dd")
	if res := caller.recvResponse(200); res.StatusCode != 503 {
		t.Fatalf("call with the only member down: %d", res.StatusCode)
	}
	m.silent.Store(false)
	waitFor(t, "member up", func() bool { return mem.up.Load() })
}

func TestMaxForwardsAndLoop(t *testing.T) {
	mcp := newFakeMCP(t, 200)
	r, _, _, _ := startRM(t, nil, baseDocs+mcpDoc("a", mcp.addr()))
	rm := r.SIPAddr()
	caller := newTestUA(t)
	caller.invite(rm, "sip:1@"+rm, "Max-Forwards: 0")
	// The Max-Forwards header given twice: the parser keeps the first, 70.
	if res := caller.recvResponse(200); res.StatusCode != 200 && res.StatusCode != 483 {
		t.Fatalf("got %d", res.StatusCode)
	}
	msg := "OPTIONS sip:x@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + caller.addr() + ";branch=z9hG4bK-mf0\r\nMax-Forwards: 0\r\n" +
		"From: <sip:a@b>;tag=1\r\nTo: <sip:x@192.0.2.1>\r\nCall-ID: mf0\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	caller.send(rm, msg)
	if res := caller.recvResponse(200); res.StatusCode != 483 {
		t.Fatalf("Max-Forwards 0: %d, want 483", res.StatusCode)
	}
	// OPTIONS to rm itself is answered.
	caller.send(rm, strings.ReplaceAll(strings.ReplaceAll(msg, "sip:x@192.0.2.1", "sip:"+rm), "mf0", "opt1"))
	if res := caller.recvResponse(200); res.StatusCode != 200 {
		t.Fatalf("OPTIONS to rm: %d", res.StatusCode)
	}
}

func TestTCPCallerUDPMcpDoubleRecordRoute(t *testing.T) {
	mcp := newFakeMCP(t, 200)
	r, _, _, _ := startRM(t, nil, baseDocs+mcpDoc("a", mcp.addr()))
	caller := newTCPUA(t, r.SIPAddr())
	caller.inviteTCP("sip:5551000@" + r.SIPAddr() + ";gvp-tenant-id=80dd")
	inv := <-mcp.inviteCh
	rrs := inv.GetHeaders("Record-Route")
	if len(rrs) != 2 || !strings.Contains(rrs[0].Value(), "transport=udp") || !strings.Contains(rrs[1].Value(), "transport=tcp") {
		t.Fatalf("Record-Route %v", rrs)
	}
	res := caller.recvFinal()
	if res.StatusCode != 200 || len(res.GetHeaders("Record-Route")) != 2 {
		t.Fatalf("caller got %s", res.StartLine())
	}
	// The mcp hangs up: the BYE crosses rm over UDP then TCP.
	bye := sip.NewRequest(sip.BYE, sip.Uri{Scheme: "sip", User: "caller", Host: "127.0.0.1", Port: caller.port()})
	p := sip.NewParams()
	p.Add("branch", "z9hG4bK-mcpbye")
	bye.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: mcp.port(), Params: p})
	for _, h := range rrs {
		bye.AppendHeader(&sip.RouteHeader{Address: h.(*sip.RecordRouteHeader).Address})
	}
	mf := sip.MaxForwardsHeader(70)
	bye.AppendHeader(&mf)
	bye.AppendHeader(&sip.FromHeader{Address: res.To().Address, Params: res.To().Params})
	bye.AppendHeader(&sip.ToHeader{Address: res.From().Address, Params: res.From().Params})
	bye.AppendHeader(sip.HeaderClone(res.CallID()))
	bye.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.BYE})
	cl := sip.ContentLengthHeader(0)
	bye.AppendHeader(&cl)
	mcp.sendMsg(firstHop(bye), bye)
	got := caller.recvRequest()
	if got.Method != sip.BYE {
		t.Fatalf("caller got %s", got.StartLine())
	}
	waitFor(t, "call end", func() bool { return r.ActiveCalls() == 0 })
}

// TestRetransmissionsAbsorbed: once answered, a retransmitted INVITE is absorbed and a
// retransmitted BYE answered again from rm's memory of the transaction; neither reaches the
// mcp twice. A CANCEL of the answered INVITE gets 200 and ends nothing.
func TestRetransmissionsAbsorbed(t *testing.T) {
	mcp := newFakeMCP(t, 200)
	r, _, _, _ := startRM(t, nil, baseDocs+mcpDoc("mcp-0", mcp.addr()))
	caller := newTestUA(t)
	rm := r.SIPAddr()

	inv, _, _ := caller.inviteMsg("sip:5551000@" + rm + ";gvp-tenant-id=80dd")
	caller.send(rm, inv)
	ok := caller.recvResponse(200)
	if ok.StatusCode != 200 {
		t.Fatalf("INVITE answered %d", ok.StatusCode)
	}
	caller.send(rm, inv) // the 2xx crossed a retransmission

	cancel := strings.Replace(strings.Replace(inv, "INVITE sip:", "CANCEL sip:", 1), "CSeq: 1 INVITE", "CSeq: 1 CANCEL", 1)
	caller.send(rm, cancel)
	if res := caller.recvResponse(200); res.StatusCode != 200 || res.CSeq().MethodName != sip.CANCEL {
		t.Fatalf("CANCEL after the 2xx answered %d %s", res.StatusCode, res.CSeq().MethodName)
	}

	ack := caller.inDialog(sip.ACK, ok, 1)
	caller.sendMsg(firstHop(ack), ack)
	waitFor(t, "ACK at mcp", func() bool { return mcp.count("ACK") == 1 })

	bye := caller.inDialog(sip.BYE, ok, 2)
	byeMsg := bye.String()
	caller.send(firstHop(bye), byeMsg)
	first := caller.recvResponse(200)
	caller.send(firstHop(bye), byeMsg) // the 200 was lost
	again := caller.recvResponse(200)
	if again.CSeq().MethodName != sip.BYE || again.String() != first.String() {
		t.Fatalf("BYE retransmission answered with\n%s\nwant\n%s", again, first)
	}
	if n := mcp.count("invite"); n != 1 {
		t.Fatalf("mcp got %d INVITEs, want 1", n)
	}
	if n := mcp.count("bye"); n != 1 {
		t.Fatalf("mcp got %d BYEs, want 1", n)
	}
	if n := mcp.count("CANCEL"); n != 0 {
		t.Fatalf("mcp got %d CANCELs, want 0", n)
	}
	if r.ActiveCalls() != 0 {
		t.Fatalf("active calls %d", r.ActiveCalls())
	}
}
