package rm

import (
	"runtime"
	"testing"

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
	r, _, _, _ := startRM(t, nil, docs)
	rm := r.SIPAddr()
	caller := newTestUA(t)
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	// Warm up pools and maps with one call.
	caller.invite(rm, "sip:123@"+rm+";gvp-tenant-id=80dd")
	warm := caller.recvResponse(200)
	before := heap()
	answers := make([]*sip.Response, 0, n)
	for i := 0; i < n; i++ {
		caller.invite(rm, "sip:123@"+rm+";gvp-tenant-id=80dd")
		res := caller.recvResponse(200)
		if res.StatusCode != 200 {
			t.Fatalf("call %d: %d", i, res.StatusCode)
		}
		answers = append(answers, res)
	}
	during := heap()
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
}
