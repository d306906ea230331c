package wav

import (
	"errors"
	"io"
)

// Buffer is an in-memory io.WriteSeeker for a [Writer]: a recording kept in
// memory (the header is patched in place when the Writer is closed). The zero
// value is an empty buffer. It is not safe for concurrent use.
type Buffer struct {
	b   []byte
	off int
}

// Write writes p at the current offset, growing the buffer as needed.
func (m *Buffer) Write(p []byte) (int, error) {
	if end := m.off + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	copy(m.b[m.off:], p)
	m.off += len(p)
	return len(p), nil
}

// Seek sets the offset for the next Write.
func (m *Buffer) Seek(offset int64, whence int) (int64, error) {
	var base int
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = m.off
	case io.SeekEnd:
		base = len(m.b)
	default:
		return 0, errors.New("wav buffer: bad whence")
	}
	n := base + int(offset)
	if n < 0 {
		return 0, errors.New("wav buffer: negative seek")
	}
	m.off = n
	return int64(n), nil
}

// Bytes returns the content written (not a copy).
func (m *Buffer) Bytes() []byte { return m.b }
