package dtmf

import "time"

// DefaultEndTimeout is how long the receiver waits after the last packet of
// an event before it finalises the event without having seen an end packet.
const DefaultEndTimeout = 300 * time.Millisecond

// historyLen is the number of finalised events remembered to drop their
// retransmissions, redundant copies and late reordered packets.
const historyLen = 16

// Digit is a DTMF event delivered by a [Receiver] or a [Detector].
type Digit struct {
	Digit     rune   // '0'-'9', '*', '#', 'A'-'D', or 0 for non-DTMF events
	Event     uint8  // RFC 4733 event code
	Timestamp uint32 // RTP timestamp of the event start (0 for in-band)
	Duration  uint16 // longest duration seen, in timestamp units
}

type eventKey struct {
	ts    uint32
	event uint8
}

// Receiver turns a stream of RFC 4733 packets into digits, delivering every
// event exactly once. It tolerates what real gateways send: a missing marker
// bit, a duration of 0, end packets repeated (or lost, in which case the
// event is finalised when a newer event starts or after EndTimeout without
// packets, see Poll), packets carrying several events, retransmitted or
// redundant reports of old events, and reordering within a burst. Digits are
// delivered in timestamp order: packets of an event that starts before the
// current or the last delivered event are dropped (call Reset when the
// sender's SSRC changes).
//
// A Receiver is not safe for concurrent use.
type Receiver struct {
	// EndTimeout finalises an event with no packet for this long (default
	// DefaultEndTimeout).
	EndTimeout time.Duration

	onDigit func(Digit)
	active  bool
	cur     Digit
	last    time.Time
	history [historyLen]eventKey
	newest  uint32 // start timestamp of the newest finalised event
	any     bool   // an event has been finalised since the last Reset
	hlen    int
	hnext   int
	blocks  [8]Event
}

// NewReceiver returns a receiver that calls onDigit for each finished event.
func NewReceiver(onDigit func(Digit)) *Receiver {
	return &Receiver{EndTimeout: DefaultEndTimeout, onDigit: onDigit}
}

// Packet processes the payload of one telephone-event RTP packet with RTP
// timestamp ts, received at now. The marker bit is not needed: event
// boundaries are recognised by timestamp changes.
func (r *Receiver) Packet(ts uint32, payload []byte, now time.Time) error {
	blocks, err := DecodePayload(r.blocks[:0], payload)
	if err != nil {
		return err
	}
	// RFC 4733 section 2.5.1.5: when several events share a packet, the
	// packet timestamp is that of the first; each following event starts
	// after the durations of the preceding ones.
	start := ts
	for _, b := range blocks {
		r.block(start, b, now)
		start += uint32(b.Duration)
	}
	return nil
}

func (r *Receiver) seen(k eventKey) bool {
	for i := range r.hlen {
		if r.history[i] == k {
			return true
		}
	}
	return false
}

func (r *Receiver) block(ts uint32, b Event, now time.Time) {
	k := eventKey{ts, b.Event}
	if r.seen(k) {
		return // retransmitted end, redundant copy or late packet
	}
	if r.any && int32(ts-r.newest) < 0 {
		return // belongs before an event already delivered
	}
	if r.active {
		switch {
		case r.cur.Timestamp == ts && r.cur.Event == b.Event:
			r.cur.Duration = max(r.cur.Duration, b.Duration)
			r.last = now
			if b.End {
				r.finish()
			}
			return
		case int32(ts-r.cur.Timestamp) < 0:
			return // an older event we never saw: too late to deliver in order
		default:
			r.finish() // a newer event supersedes one whose end was lost
		}
	}
	d, _ := DigitForEvent(b.Event)
	r.cur = Digit{Digit: d, Event: b.Event, Timestamp: ts, Duration: b.Duration}
	r.active = true
	r.last = now
	if b.End {
		r.finish()
	}
}

func (r *Receiver) finish() {
	r.active = false
	if !r.any || int32(r.cur.Timestamp-r.newest) > 0 {
		r.newest = r.cur.Timestamp
	}
	r.any = true
	r.history[r.hnext] = eventKey{r.cur.Timestamp, r.cur.Event}
	r.hnext = (r.hnext + 1) % historyLen
	r.hlen = min(r.hlen+1, historyLen)
	if r.onDigit != nil {
		r.onDigit(r.cur)
	}
}

// Poll finalises the current event if no packet arrived for EndTimeout.
// Call it periodically (the media session calls it every 20 ms).
func (r *Receiver) Poll(now time.Time) {
	if r.active && now.Sub(r.last) >= r.EndTimeout {
		r.finish()
	}
}

// Reset forgets all state without delivering the current event. Call it
// when the sender's SSRC changes, since the new stream's timestamps are
// unrelated to the old one's.
func (r *Receiver) Reset() {
	r.active, r.any, r.hlen, r.hnext = false, false, 0, 0
}

// Flush finalises the current event, if any (for example when the call
// ends).
func (r *Receiver) Flush() {
	if r.active {
		r.finish()
	}
}
