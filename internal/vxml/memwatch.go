package vxml

import (
	"errors"
	"runtime/metrics"
	"sync"
	"time"
)

// DefaultScriptHeapGrowth bounds how much the process heap may grow while one script or
// expression runs before it is interrupted with error.semantic: goja has no allocation limit,
// so a script doubling a string would otherwise take the whole mcp down within its time
// budget. The measure is process-wide and sampled (memCheckInterval), so it is a coarse
// guard against runaway scripts, far above what any real application allocates in one go.
const DefaultScriptHeapGrowth = 64 << 20

// memCheckInterval is how often running scripts are checked against their heap budget.
const memCheckInterval = 5 * time.Millisecond

var errMemory = errors.New("script exceeded its memory budget")

// memWatch samples the heap while scripts run and interrupts those whose run has made it grow
// past their budget. One goroutine serves every session; it stops when no script runs.
var memWatch = struct {
	sync.Mutex
	running map[*scriptEnv]uint64 // heap size when the script started
	active  bool
}{running: map[*scriptEnv]uint64{}}

func heapBytes() uint64 {
	s := [1]metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s[:])
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func watchStart(e *scriptEnv) {
	h := heapBytes()
	memWatch.Lock()
	memWatch.running[e] = h
	if !memWatch.active {
		memWatch.active = true
		go watchLoop()
	}
	memWatch.Unlock()
}

func watchStop(e *scriptEnv) {
	memWatch.Lock()
	delete(memWatch.running, e)
	memWatch.Unlock()
}

func watchLoop() {
	t := time.NewTicker(memCheckInterval)
	defer t.Stop()
	for range t.C {
		h := heapBytes()
		memWatch.Lock()
		if len(memWatch.running) == 0 {
			memWatch.active = false
			memWatch.Unlock()
			return
		}
		for e, start := range memWatch.running {
			if h > start && h-start > e.maxHeapGrowth {
				e.rt.Interrupt(errMemory)
			}
		}
		memWatch.Unlock()
	}
}
