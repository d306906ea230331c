package mcp

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/caller"
)

// TestVoiceXMLFetchAudio: over a real call, a <goto> whose document is slow to come makes
// the caller hear the fetchaudio (a WAV from the application server) until it arrives; when
// the document comes at once, the caller hears nothing and the clip is not even fetched.
// Text prompts are silent here (no TTS engine), so any speech heard is the fetchaudio.
func TestVoiceXMLFetchAudio(t *testing.T) {
	wavBytes, err := os.ReadFile(fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	var holdFetches atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/start.vxml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/voicexml+xml")
		fmt.Fprintf(w, `<?xml version="1.0"?><vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
<property name="fetchaudiodelay" value="400ms"/><property name="fetchaudiominimum" value="0s"/>
<form><block><goto next="%s.vxml" fetchaudio="hold.wav"/></block></form></vxml>`, r.URL.Query().Get("next"))
	})
	page := func(delay time.Duration) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(delay)
			w.Header().Set("Content-Type", "application/voicexml+xml")
			fmt.Fprint(w, `<?xml version="1.0"?><vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
<form><block><disconnect/></block></form></vxml>`)
		}
	}
	mux.HandleFunc("/slow.vxml", page(2*time.Second))
	mux.HandleFunc("/fast.vxml", page(0))
	mux.HandleFunc("/hold.wav", func(w http.ResponseWriter, r *http.Request) {
		holdFetches.Add(1)
		w.Header().Set("Content-Type", "audio/wav")
		_, _ = w.Write(wavBytes)
	})
	ln := listenLoopback(t)
	srv := http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	h := startBridgeMCP(t, nil)

	heard := func(next string) int64 {
		t.Helper()
		start := "http://" + ln.Addr().String() + "/start.vxml?next=" + next
		c, err := dial(t, newAgent(t), h.uri("dialog", ";voicexml="+url.QueryEscape(start)), caller.DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e := &energySink{}
		c.Media().SetSink(e)
		hungUp(t, c)
		return e.loud.Load()
	}
	if n := heard("fast"); n != 0 || holdFetches.Load() != 0 {
		t.Fatalf("fast fetch: %d loud frames heard, fetchaudio fetched %d times; want silence", n, holdFetches.Load())
	}
	if n := heard("slow"); n < 25 || holdFetches.Load() != 1 {
		t.Fatalf("slow fetch: %d loud frames heard, fetchaudio fetched %d times; want the clip", n, holdFetches.Load())
	}
}
