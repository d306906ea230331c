//go:build linux

package media

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// timerfdSleeper sleeps on a Linux timerfd read through the runtime's poller: the read
// returns when the kernel's high-resolution timer expires, with no rounding to milliseconds.
type timerfdSleeper struct {
	f   *os.File
	fd  int // f's descriptor (File.Fd would put it back in blocking mode)
	buf [8]byte
}

// newSleeper returns a timerfd sleeper, or the portable one when the kernel refuses timerfds.
func newSleeper() sleeper {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return newTimerSleeper()
	}
	// A non-blocking descriptor gives a File whose reads park the goroutine in the poller.
	return &timerfdSleeper{f: os.NewFile(uintptr(fd), "media-timerfd"), fd: fd}
}

func (s *timerfdSleeper) arm(d time.Duration) error {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	return unix.TimerfdSettime(s.fd, 0, &spec, nil)
}

func (s *timerfdSleeper) sleep(d time.Duration) {
	if d <= 0 {
		return // arming with 0 disarms the timerfd: the read would never return
	}
	if err := s.arm(d); err != nil {
		time.Sleep(d)
		return
	}
	// The read returns the expiration count once the timer fires (or was fired by interrupt).
	if _, err := s.f.Read(s.buf[:]); err != nil {
		time.Sleep(d) // closed: behave like a plain sleep
	}
}

// interrupt fires the timer now: the sleep in progress returns, or the next one returns at
// once if its own arming comes later (it then rearms; the worker rechecks its wake channel).
func (s *timerfdSleeper) interrupt() { _ = s.arm(time.Nanosecond) }

func (s *timerfdSleeper) close() { _ = s.f.Close() }

// setThreadNice sets the nice value of the calling thread.
func setThreadNice(nice int) error { return unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice) }

// threadID returns the calling thread's id.
func threadID() int { return unix.Gettid() }
