//go:build !linux

package media

import "errors"

// newSleeper returns the portable sleeper (a time.Timer).
func newSleeper() sleeper { return newTimerSleeper() }

// setThreadNice is not supported here.
func setThreadNice(int) error { return errors.New("thread priorities are set on Linux only") }

// threadID is 0 here.
func threadID() int { return 0 }
