package billing

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// referenceCDR is the reflective encoding the fast encoder must reproduce.
func referenceCDR(t testing.TB, c *CDR) []byte {
	b, err := json.Marshal(cdrJSON{cdrAlias: (*cdrAlias)(c), DurationMS: c.Duration.Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type eventAlias Event

func referenceEvent(t testing.TB, e *Event) []byte {
	b, err := json.Marshal((*eventAlias)(e))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	start := time.Date(2026, 11, 26, 3, 4, 5, 123456789, time.UTC)
	full := &CDR{ID: "id-1", SessionID: "s;gvp.rm.datanodes=node-id=1", Component: ComponentRM,
		ComponentName: "rm-1", State: StateCompleted, TenantID: "80dd", TenantName: "t<&>",
		Profile: "app \"quoted\" \\ back", ServiceType: "voicexml", DNIS: "5551000", ANI: "sipp\x01\x1f",
		LocalURI: "sip:5551000@127.0.0.1:5060", RemoteURI: "sip:sipp@127.0.0.1:5061", CallID: "1-2@127.0.0.1",
		MCP: "mcp-1", Start: start, Answer: start.Add(time.Second), End: start.Add(3 * time.Second),
		Duration: 3*time.Second + 999*time.Microsecond, EndReason: EndRejected,
		EndDetail: "bad\xffutf8 \u2028 \u2029 é 😀\n\r\t\b\f", EndCode: 486}
	minimal := &CDR{ID: "x", SessionID: "y", Component: ComponentMCP, State: StateInProgress,
		Start: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", -5*3600))}
	for _, c := range []*CDR{full, minimal} {
		got, err := c.AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if want := append([]byte("prefix"), referenceCDR(t, c)...); !bytes.Equal(got, want) {
			t.Errorf("cdr encoding differs\n got %s\nwant %s", got, want)
		}
		var back CDR
		if err := json.Unmarshal(got[len("prefix"):], &back); err != nil {
			t.Fatalf("decode own encoding: %v", err)
		}
		if back.ID != c.ID || !back.Start.Equal(c.Start) || back.Duration != c.Duration.Truncate(time.Millisecond) {
			t.Errorf("round trip: got %+v", back)
		}
	}
	e := &Event{ID: "e1", SessionID: "s1", Time: start, Kind: "prompt", Detail: "say <\"hi\">"}
	got, err := e.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := referenceEvent(t, e); !bytes.Equal(got, want) {
		t.Errorf("event encoding differs\n got %s\nwant %s", got, want)
	}
	// A time encoding/json refuses is refused here too.
	bad := *minimal
	bad.Start = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := bad.AppendJSON(nil); err == nil {
		t.Error("year 10000 encoded without error")
	}
	if _, err := json.Marshal(cdrJSON{cdrAlias: (*cdrAlias)(&bad)}); err == nil {
		t.Error("reference encoder accepted year 10000: the test's premise is wrong")
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("id", "session", "detail", "ani", int64(1764126245123456789), int64(3000), 200)
	f.Add("\xff\xfe", "<>&\u2028", "\"\\\x00\x7f", "é", int64(0), int64(-5), -1)
	f.Fuzz(func(t *testing.T, id, session, detail, ani string, startNS, durMS int64, code int) {
		start := time.Unix(0, startNS).UTC()
		c := &CDR{ID: id, SessionID: session, Component: ComponentRM, State: StateCompleted, ANI: ani,
			EndDetail: detail, Start: start, End: start.Add(time.Duration(durMS) * time.Millisecond),
			Duration: time.Duration(durMS) * time.Millisecond, EndReason: EndError, EndCode: code}
		got, err := c.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := referenceCDR(t, c); !bytes.Equal(got, want) {
			t.Fatalf("cdr encoding differs\n got %s\nwant %s", got, want)
		}
		e := &Event{ID: id, SessionID: session, Time: start, Kind: ani, Detail: detail}
		got, err = e.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := referenceEvent(t, e); !bytes.Equal(got, want) {
			t.Fatalf("event encoding differs\n got %s\nwant %s", got, want)
		}
	})
}
