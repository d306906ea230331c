//go:build linux

package media

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// threadNice reads the nice value of thread tid of this process from /proc.
func threadNice(t *testing.T, tid int64) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: state is field 3, nice field 19.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, err := strconv.Atoi(f[19-3])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWorkerNice: the scheduler workers' threads get the configured nice value, and only they
// (raising it needs no privilege, so the test runs anywhere).
func TestWorkerNice(t *testing.T) {
	e := testEngine(t, func(c *Config) { c.Workers, c.WorkerNice = 2, 7 })
	deadline := time.Now().Add(5 * time.Second)
	for _, w := range e.sched.workers {
		for w.tid.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		// The worker sets its priority right after publishing its id.
		for threadNice(t, w.tid.Load()) != 7 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := threadNice(t, w.tid.Load()); got != 7 {
			t.Fatalf("worker thread %d nice %d, want 7", w.tid.Load(), got)
		}
	}
	if got := threadNice(t, int64(os.Getpid())); got == 7 {
		t.Fatalf("the main thread got the workers' nice value")
	}
	if err := (Config{BindAddr: DefaultConfig().BindAddr, Workers: 1, PhaseSlots: 1, WorkerNice: -21}).Validate(); err == nil {
		t.Fatal("worker nice -21 accepted")
	}
}
