package billing

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)

func sampleCDR() *CDR {
	return &CDR{ID: NewRecordID(), SessionID: "sess-1", Component: ComponentRM, ComponentName: "rm1",
		State: StateInProgress, TenantID: "80dd", TenantName: "t100", Profile: "billing", ServiceType: "voicexml",
		DNIS: "5551000", ANI: "5550001", LocalURI: "sip:5551000@127.0.0.1:5060", RemoteURI: "sip:5550001@127.0.0.1:5070",
		CallID: "abc@127.0.0.1", MCP: "mcp1", Start: t0}
}

func TestCDRJSONRoundTrip(t *testing.T) {
	c := sampleCDR()
	c.Answer = t0.Add(2 * time.Second)
	c.Complete(t0.Add(65*time.Second), EndRejected, "", 486)
	body, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"record_id":"` + c.ID, `"state":"completed"`, `"duration_ms":65000`, `"end_code":486`, `"gvp_session_id":"sess-1"`} {
		if !bytes.Contains(body, []byte(key)) {
			t.Errorf("body lacks %s: %s", key, body)
		}
	}
	rec, err := Decode(CDRDestination, c.ID, body)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.(*CDR); *got != *c {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, c)
	}
	// In progress: no end fields in JSON.
	b2, _ := Encode(sampleCDR())
	if bytes.Contains(b2, []byte(`"end"`)) || bytes.Contains(b2, []byte(`"duration_ms"`)) || bytes.Contains(b2, []byte(`"answer"`)) {
		t.Fatalf("in-progress body carries end fields: %s", b2)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(c *CDR)
		want error
	}{
		{"ok", func(c *CDR) {}, nil},
		{"no id", func(c *CDR) { c.ID = "" }, ErrMissingID},
		{"no session", func(c *CDR) { c.SessionID = "" }, ErrMissingSession},
		{"bad component", func(c *CDR) { c.Component = "sbc" }, ErrBadComponent},
		{"bad state", func(c *CDR) { c.State = "done" }, ErrBadState},
		{"no start", func(c *CDR) { c.Start = time.Time{} }, ErrMissingStart},
		{"completed without end", func(c *CDR) { c.State = StateCompleted }, ErrBadEnd},
		{"completed", func(c *CDR) { c.Complete(t0.Add(time.Second), EndCallerHangup, "", 0) }, nil},
	}
	for _, tc := range cases {
		c := sampleCDR()
		tc.mod(c)
		if err := c.Validate(); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	ev := NewEvent("s", t0, "prompt", "hello.wav")
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	ev.Kind = ""
	if err := ev.Validate(); !errors.Is(err, ErrMissingKind) {
		t.Fatalf("event without kind: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := Encode(sampleCDR())
	ev, _ := Encode(NewEvent("s", t0, "k", ""))
	cases := []struct {
		name, dest, id string
		body           []byte
	}{
		{"not json", CDRDestination, "", []byte("{")},
		{"unknown destination", "/queue/other", "", good},
		{"header id differs", CDRDestination, "other", good},
		{"invalid record", CDRDestination, "", []byte(`{"record_id":"x"}`)},
		{"event on cdr queue", CDRDestination, "", ev},
		{"too large", CDRDestination, "", bytes.Repeat([]byte(" "), MaxRecordSize+1)},
	}
	for _, tc := range cases {
		if _, err := Decode(tc.dest, tc.id, tc.body); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if _, err := Decode(EventDestination, "", ev); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecode(f *testing.F) {
	c := sampleCDR()
	body, _ := Encode(c)
	f.Add(CDRDestination, body)
	evb, _ := Encode(NewEvent("s", t0, "k", "d"))
	f.Add(EventDestination, evb)
	f.Add(CDRDestination, []byte(`{"record_id":"a","duration_ms":-1}`))
	f.Fuzz(func(t *testing.T, dest string, body []byte) {
		rec, err := Decode(dest, "", body)
		if err != nil {
			return
		}
		// A decoded record re-encodes and decodes to the same value.
		b2, err := Encode(rec)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		rec2, err := Decode(dest, rec.RecordID(), b2)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		j1, _ := json.Marshal(rec)
		j2, _ := json.Marshal(rec2)
		if !bytes.Equal(j1, j2) {
			t.Fatalf("unstable: %s vs %s", j1, j2)
		}
	})
}

func BenchmarkCDREncode(b *testing.B) {
	c := sampleCDR()
	c.Complete(t0.Add(time.Minute), EndCallerHangup, "", 0)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		body, err := Encode(c)
		if err != nil {
			b.Fatal(err)
		}
		n = len(body)
	}
	b.SetBytes(int64(n))
}

func TestLogAndMemoryPublishers(t *testing.T) {
	var m MemoryPublisher
	if err := m.Publish(sampleCDR()); err != nil {
		t.Fatal(err)
	}
	bad := sampleCDR()
	bad.ID = ""
	if err := m.Publish(bad); err == nil {
		t.Fatal("invalid record accepted")
	}
	if len(m.Records()) != 1 {
		t.Fatalf("records %d", len(m.Records()))
	}
	var lp Publisher = LogPublisher{}
	if err := lp.Publish(bad); err == nil || !strings.Contains(err.Error(), "record id") {
		t.Fatalf("log publisher: %v", err)
	}
}
