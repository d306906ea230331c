package mcp

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/caller"
	"github.com/opengvp/gvp/internal/media/wav"
)

func TestAnnouncementPlaysAndHangsUp(t *testing.T) {
	h := startMCP(t, nil)
	a := newAgent(t)
	au, err := wav.ReadFile(fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	packets := int(math.Ceil(float64(len(au.To8kMono())) / 160))
	for _, tc := range []struct {
		name      string
		params    string
		transport string
		plays     int
	}{
		{"once udp", "", "udp", 1},
		{"once tcp", "", "tcp", 1},
		{"repeat 2 with delay", ";repeat=2;delay=200", "udp", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			o := caller.Options{Target: h.annc(t, tc.params), MaxDuration: 15 * time.Second}
			o.Transport = tc.transport
			r := a.Run(ctx, o)
			if r.Code != 200 || r.HungUpBy != "remote" {
				t.Fatalf("want 200 and a BYE from the mcp, got %+v", r)
			}
			if r.SessionID == "" {
				t.Errorf("no X-Genesys-GVP-Session-ID in the 200")
			}
			// The prompt is sent at 20 ms pacing: its packets (plus silence between plays)
			// arrive before the BYE.
			want := tc.plays * packets
			if int(r.PacketsReceived) < want || int(r.PacketsReceived) > want+tc.plays*15+10 {
				t.Errorf("received %d packets, want about %d", r.PacketsReceived, want)
			}
		})
	}
	waitFor(t, "calls to end", 5*time.Second, func() bool { return h.m.Active() == 0 })
	// CDRs: in_progress then completed for each call, platform_hangup.
	var completed int
	for _, rec := range h.pub.Records() {
		c := rec.(*billing.CDR)
		if c.State == billing.StateCompleted {
			completed++
			if c.EndReason != billing.EndPlatformHangup || c.ServiceType != ServiceAnnouncement || c.Answer.IsZero() {
				t.Errorf("completed CDR %+v", c)
			}
		}
	}
	if completed != 3 {
		t.Errorf("%d completed CDRs, want 3", completed)
	}
}
