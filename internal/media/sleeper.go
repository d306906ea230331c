package media

import "time"

// sleeper is how a scheduler worker waits for the deadline of its next send phase. Go's timers
// are served by the runtime's network poller, which sleeps in whole milliseconds (epoll_wait):
// a worker waiting on a time.Timer for a phase 0.5 ms away wakes up to a millisecond late,
// which is the whole of a 20 ms tick's error budget. On Linux a timerfd, armed with the
// kernel's nanosecond timer and read through the same poller, wakes the worker at the deadline
// (newSleeper in thread_linux.go); elsewhere a time.Timer does (thread_other.go).
type sleeper interface {
	// sleep blocks for d, or less when interrupt is called meanwhile.
	sleep(d time.Duration)
	// interrupt ends the sleep in progress. One that comes between two sleeps may be lost (the
	// timerfd is rearmed by the next sleep), so callers recheck their own state after a sleep.
	interrupt()
	close()
}

// timerSleeper is the portable sleeper.
type timerSleeper struct {
	t    *time.Timer
	kick chan struct{}
}

func newTimerSleeper() *timerSleeper {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &timerSleeper{t: t, kick: make(chan struct{}, 1)}
}

func (s *timerSleeper) sleep(d time.Duration) {
	s.t.Reset(d)
	select {
	case <-s.t.C:
	case <-s.kick:
		s.t.Stop() // since Go 1.23 Stop leaves no stale value in t.C
	}
}

func (s *timerSleeper) interrupt() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *timerSleeper) close() { s.t.Stop() }
