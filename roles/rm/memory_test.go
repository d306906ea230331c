package rm

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// maxDialogBytes is the memory budget of one active dialog.
const maxDialogBytes = 32 << 10

// TestMemoryPerDialog holds dialogs open through rm and measures the heap they cost, then
// checks that ending them releases every call and counter.
func TestMemoryPerDialog(t *testing.T) {
	if testing.Short() {
		t.Skip("memory measurement in -short mode")
	}
	const n = 1000
	mcp := newFakeMCP(t, 200)
	docs := baseDocs + mcpDoc("a", mcp.addr())
	docs = docs[:len(docs)-len("capacity: 10\n")] + "capacity: 100000\n"
	r, _, _, reg := startRM(t, nil, docs)
	rm := r.SIPAddr()
	caller := newTestUA(t)
	// Warm up pools and maps with one call.
	caller.invite(rm, "sip:123@"+rm+";gvp-tenant-id=80dd")
	warm := caller.recvResponse(200)
	before := heapAlloc()
	answers := make([]*sip.Response, 0, n)
	for i := 0; i < n; i++ {
		caller.invite(rm, "sip:123@"+rm+";gvp-tenant-id=80dd")
		res := caller.recvResponse(200)
		if res.StatusCode != 200 {
			t.Fatalf("call %d: %d", i, res.StatusCode)
		}
		answers = append(answers, res)
	}
	during := heapAlloc()
	per := (int64(during) - int64(before)) / n
	// The test's own copies of the 200 OKs are part of the delta: this overstates rm's cost.
	t.Logf("heap per active dialog: %d bytes (%d dialogs, includes the finished INVITE transactions kept for Timer L)", per, n)
	if per > maxDialogBytes {
		t.Fatalf("heap per dialog %d bytes, budget %d", per, maxDialogBytes)
	}
	for i, res := range append(answers, warm) {
		bye := caller.inDialog(sip.BYE, res, 2)
		caller.sendMsg(firstHop(bye), bye)
		if got := caller.recvResponse(200); got.StatusCode != 200 {
			t.Fatalf("BYE %d: %d", i, got.StatusCode)
		}
	}
	waitFor(t, "all calls to end", func() bool { return r.ActiveCalls() == 0 })
	if c := r.px.counters.tenantCalls("t100"); c != 0 {
		t.Fatalf("tenant counter %d after every call ended", c)
	}
	if a := r.px.pools.all["a"].active.Load(); a != 0 {
		t.Fatalf("member active %d after every call ended", a)
	}
	// No transaction is left as an object: the answered ones are in the retired table, one
	// INVITE and one BYE per call, until 64*T1 has passed.
	waitFor(t, "transactions to end", func() bool { return r.px.stx.len() == 0 && r.px.ctx.len() == 0 })
	if got := r.px.retired.len(); got != 2*(n+1) {
		t.Fatalf("%d retired transactions, want %d", got, 2*(n+1))
	}
	if got := metricSum(t, reg, "gvp_rm_transactions"); got != float64(2*(n+1)) {
		t.Fatalf("gvp_rm_transactions sums to %v, want %d (all retired)", got, 2*(n+1))
	}
	r.px.retired.expire(time.Now().Add(timer64T1 + time.Second))
	if got := r.px.retired.len(); got != 0 {
		t.Fatalf("%d retired transactions left after 64*T1", got)
	}
}
