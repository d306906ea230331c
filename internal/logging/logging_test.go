package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/rs/zerolog"
)

func TestSlogBridge(t *testing.T) {
	var buf bytes.Buffer
	l := zerolog.New(&buf).Level(zerolog.InfoLevel)
	s := slog.New(NewSlogHandler(l)).With("role", "rm").WithGroup("sip")
	s.Debug("dropped")
	s.Warn("retransmission", "call_id", "abc", "n", 3)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("one JSON line expected, got %q: %v", buf.String(), err)
	}
	if m["level"] != "warn" || m["message"] != "retransmission" || m["role"] != "rm" || m["sip.call_id"] != "abc" || m["sip.n"] != float64(3) {
		t.Fatalf("unexpected record %v", m)
	}
}

func TestValidate(t *testing.T) {
	if err := (Config{Level: "loud", Format: "json"}).Validate("log"); err == nil || !bytes.Contains([]byte(err.Error()), []byte(`"log.level"`)) {
		t.Fatalf("want error naming log.level, got %v", err)
	}
	if err := (Config{Level: "info", Format: "xml"}).Validate("log"); err == nil || !bytes.Contains([]byte(err.Error()), []byte(`"log.format"`)) {
		t.Fatalf("want error naming log.format, got %v", err)
	}
	if err := DefaultConfig().Validate("log"); err != nil {
		t.Fatal(err)
	}
}

func TestSetLevel(t *testing.T) {
	var buf bytes.Buffer
	l := New(Config{Level: "info", Format: "json"}, &buf)
	defer zerolog.SetGlobalLevel(zerolog.TraceLevel)
	l.Debug().Msg("hidden")
	if buf.Len() != 0 {
		t.Fatalf("debug written at info: %q", buf.String())
	}
	if err := SetLevel("debug"); err != nil {
		t.Fatal(err)
	}
	l.Debug().Msg("shown")
	if !bytes.Contains(buf.Bytes(), []byte("shown")) {
		t.Fatal("debug not written after SetLevel(debug)")
	}
	if SetLevel("loud") == nil {
		t.Fatal("bad level accepted")
	}
}
