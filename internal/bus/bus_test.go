package bus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func startBroker(t *testing.T) (*Broker, string) {
	t.Helper()
	b := NewBroker("127.0.0.1:0", zerolog.Nop())
	addr, err := b.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	return b, addr
}

func testConfig(addr string) Config {
	c := DefaultConfig()
	c.Addr = addr
	c.BackoffMin, c.BackoffMax = 10*time.Millisecond, 50*time.Millisecond
	c.ReceiptTimeout = 5 * time.Second
	return c
}

// receive reads n deliveries; with ack it acknowledges each at once (the
// embedded broker holds one unacknowledged message per subscription).
func receive(t *testing.T, s *Subscriber, n int, ack bool) []Delivery {
	t.Helper()
	var out []Delivery
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case d, ok := <-s.C():
			if !ok {
				t.Fatalf("subscription ended after %d of %d: %v", len(out), n, s.Err())
			}
			out = append(out, d)
			if ack {
				if err := s.Ack(d); err != nil {
					t.Fatal(err)
				}
			}
		case <-timeout:
			t.Fatalf("received %d of %d", len(out), n)
		}
	}
	return out
}

func TestSendSubscribeAck(t *testing.T) {
	_, addr := startBroker(t)
	ctx := context.Background()
	c, err := NewClient(testConfig(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sub, err := Subscribe(ctx, testConfig(addr), []string{"/queue/a", "/queue/b"}, SubscribeOptions{PerDestination: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx, Message{Destination: "/queue/a", ID: "one", Body: []byte(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	var batch []Message
	for i := range 5 {
		batch = append(batch, Message{Destination: "/queue/b", ID: fmt.Sprint("b", i), Body: []byte("{}")})
	}
	if err := c.Send(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	if !c.Connected() {
		t.Fatal("client not connected after a send")
	}
	got := receive(t, sub, 6, true)
	ids := map[string]string{}
	for _, d := range got {
		ids[d.ID] = d.Destination
	}
	if ids["one"] != "/queue/a" || ids["b4"] != "/queue/b" || len(ids) != 6 {
		t.Fatalf("deliveries %v", ids)
	}
	if got[0].msg.Header.Get(HeaderPersistent) != "true" || got[0].msg.ContentType != ContentTypeJSON {
		t.Fatalf("headers %v", got[0].msg.Header)
	}
	_ = sub.Close()
}

func TestUnackedMessagesAreRedelivered(t *testing.T) {
	_, addr := startBroker(t)
	ctx := context.Background()
	c, _ := NewClient(testConfig(addr))
	defer c.Close()
	if err := c.Send(ctx, Message{Destination: "/queue/r", ID: "r1", Body: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	sub, err := Subscribe(ctx, testConfig(addr), []string{"/queue/r"}, SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := receive(t, sub, 1, false); d[0].ID != "r1" {
		t.Fatalf("got %q", d[0].ID)
	}
	_ = sub.Close() // without ack
	sub, err = Subscribe(ctx, testConfig(addr), []string{"/queue/r"}, SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if d := receive(t, sub, 1, true); d[0].ID != "r1" {
		t.Fatalf("redelivered %q", d[0].ID)
	}
}

func TestClientReconnectsAfterBrokerRestart(t *testing.T) {
	b, addr := startBroker(t)
	ctx := context.Background()
	c, _ := NewClient(testConfig(addr))
	defer c.Close()
	var states []bool
	c.OnStateChange(func(up bool) { states = append(states, up) })
	msg := Message{Destination: "/queue/x", ID: "x", Body: []byte("{}")}
	if err := c.Send(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	// Sends fail while the broker is down; the client keeps no dead connection.
	failed := false
	for range 20 {
		if err := c.Send(ctx, msg); err != nil {
			failed = true
			break
		}
	}
	if !failed || c.Connected() {
		t.Fatalf("send kept succeeding on a stopped broker (connected=%v)", c.Connected())
	}
	b2 := NewBroker(addr, zerolog.Nop())
	if _, err := b2.Start(); err != nil {
		t.Fatal(err)
	}
	defer b2.Stop()
	var err error
	for range 50 {
		if err = c.Send(ctx, msg); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no reconnect: %v", err)
	}
	if len(states) < 3 || !states[0] || states[1] || !states[len(states)-1] {
		t.Fatalf("state changes %v", states)
	}
}

func TestSendHonoursContextDuringBackoff(t *testing.T) {
	cfg := testConfig("127.0.0.1:1") // nothing listens on port 1
	cfg.BackoffMin, cfg.BackoffMax = time.Hour, time.Hour
	c, _ := NewClient(cfg)
	if err := c.Send(context.Background(), Message{Destination: "/queue/x", ID: "x"}); err == nil {
		t.Fatal("send to a closed port succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Send(ctx, Message{Destination: "/queue/x", ID: "x"}); err == nil {
		t.Fatal("send during backoff succeeded")
	}
	_ = c.Close()
	if err := c.Send(context.Background(), Message{Destination: "/queue/x", ID: "x"}); err != ErrClosed {
		t.Fatalf("send after close: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	b := NewBackoff(100*time.Millisecond, time.Second)
	cases := []struct{ lo, hi time.Duration }{
		{90 * time.Millisecond, 110 * time.Millisecond},
		{180 * time.Millisecond, 220 * time.Millisecond},
		{360 * time.Millisecond, 440 * time.Millisecond},
		{720 * time.Millisecond, 880 * time.Millisecond},
		{900 * time.Millisecond, 1100 * time.Millisecond},
		{900 * time.Millisecond, 1100 * time.Millisecond},
	}
	for i, c := range cases {
		if d := b.Next(); d < c.lo || d > c.hi {
			t.Fatalf("attempt %d: %v not in [%v, %v]", i, d, c.lo, c.hi)
		}
	}
	b.Reset()
	if d := b.Next(); d > 110*time.Millisecond {
		t.Fatalf("after reset: %v", d)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Addr: "nohost"}, {BackoffMin: time.Second, BackoffMax: time.Millisecond}, {HeartBeat: -1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestBrokerStartStop(t *testing.T) {
	b := NewBroker("127.0.0.1:0", zerolog.Nop())
	addr, err := b.Start()
	if err != nil || b.Addr() != addr {
		t.Fatalf("start: %v %q", err, addr)
	}
	if _, err := b.Start(); err == nil {
		t.Fatal("second start accepted")
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if b.Addr() != "" {
		t.Fatal("address after stop")
	}
}
