package mcp

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/caller"
)

func memInUse() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse
}

// BenchmarkCallMemory holds N announcement calls (GVP_BENCH_CALLS, default 300) placed by a
// caller in another process and reports the mcp's heap and stack per call with media, then
// checks that memory and goroutines come back once the calls end.
//
//	go test -run XXX -bench CallMemory -benchtime 1x ./roles/mcp
func BenchmarkCallMemory(b *testing.B) {
	n := 300
	if v, err := strconv.Atoi(os.Getenv("GVP_BENCH_CALLS")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		h := startMCP(b, func(c *Config, _ *Deps) { c.RTP.PortMin, c.RTP.PortMax = 30000, 39998 })
		// Warm the prompt cache and the runtime with one call first.
		a := newAgent(b)
		if r := a.Run(b.Context(), caller.Options{Target: h.annc(b, "")}); r.Code != 200 {
			b.Fatalf("warm-up call: %+v", r)
		}
		a.Close()
		waitFor(b, "warm-up end", 5*time.Second, func() bool { return h.m.Active() == 0 })
		goroutines0 := goroutinesSettle(b, 0, 1<<20)
		heap0, stack0 := memInUse()

		hold := 6*time.Second + time.Duration(n)*5*time.Millisecond
		cmd := exec.Command(os.Args[0], "-test.run=XXX")
		cmd.Env = append(os.Environ(), helperEnv+"="+h.annc(b, ";repeat=forever"),
			"GVP_MCP_HELPER_CALLS="+strconv.Itoa(n), "GVP_MCP_HELPER_HOLD="+hold.String())
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		waitFor(b, "all calls up", 60*time.Second, func() bool { return h.m.Active() == n })
		time.Sleep(time.Second)
		heap1, stack1 := memInUse()
		goroutines1 := runtime.NumGoroutine()
		if err := cmd.Wait(); err != nil {
			b.Fatalf("caller: %v\n%s\n%s", err, out.String(), errb.String())
		}
		var lr caller.LoadResult
		_ = json.Unmarshal(out.Bytes(), &lr)
		if lr.Succeeded != n || lr.WithAudio != n {
			b.Fatalf("caller result %+v", lr)
		}
		waitFor(b, "calls to end", 30*time.Second, func() bool { return h.m.Active() == 0 })
		// sipgo keeps finished UDP transactions for 64*T1 (32 s) to absorb retransmissions,
		// and port pairs are held off 2 s: memory comes back after that.
		goroutines2 := goroutinesSettle(b, goroutines0, 5)
		var heap2, stack2 uint64
		for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(time.Second) {
			heap2, stack2 = memInUse()
			if heap2 <= heap0+heap0/2+1<<20 || time.Now().After(deadline) {
				break
			}
		}

		perHeap := float64(heap1-heap0) / float64(n)
		perStack := float64(stack1-stack0) / float64(n)
		b.ReportMetric(perHeap/1024, "heap-KiB/call")
		b.ReportMetric(perStack/1024, "stack-KiB/call")
		b.ReportMetric(float64(goroutines1-goroutines0)/float64(n), "goroutines/call")
		b.ReportMetric(float64(int64(heap2)-int64(heap0))/1024, "heap-KiB-left")
		b.Logf("calls %d: heap %d -> %d -> %d KiB, stack %d -> %d -> %d KiB, goroutines %d -> %d -> %d",
			n, heap0>>10, heap1>>10, heap2>>10, stack0>>10, stack1>>10, stack2>>10, goroutines0, goroutines1, goroutines2)
		if goroutines2 > goroutines0+5 {
			b.Errorf("goroutines did not come back: %d before, %d after", goroutines0, goroutines2)
		}
		if heap2 > heap0+heap0/2+1<<20 {
			b.Errorf("heap grew after the calls ended: %d KiB before, %d KiB after", heap0>>10, heap2>>10)
		}
	}
}
