package media

import (
	"testing"
	"time"
)

// TestSleepers: both sleepers return from a short sleep, and interrupt ends a sleep that would
// last an hour (a hang fails the test by its timeout). The scheduler relies on the interrupt
// when a session is added or the scheduler closes.
func TestSleepers(t *testing.T) {
	for name, s := range map[string]sleeper{"platform": newSleeper(), "portable": newTimerSleeper()} {
		t.Run(name, func(t *testing.T) {
			defer s.close()
			s.sleep(time.Millisecond)
			done := make(chan struct{})
			go func() {
				s.sleep(time.Hour)
				close(done)
			}()
			for {
				s.interrupt() // repeated: one that comes before the sleep starts may be lost
				select {
				case <-done:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		})
	}
}
