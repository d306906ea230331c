package bus

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// rawConn is a hand-driven STOMP 1.2 connection to the broker.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	c := &rawConn{t: t, nc: nc, r: bufio.NewReader(nc)}
	c.send("CONNECT\naccept-version:1.2\nhost:x\n\n")
	if f := c.read(); !strings.HasPrefix(f, "CONNECTED\n") || !strings.Contains(f, "version:1.2") {
		t.Fatalf("connect answer %q", f)
	}
	return c
}

func (c *rawConn) send(f string) {
	c.t.Helper()
	if !strings.Contains(f, "\n\n") {
		f += "\n\n" // no body
	}
	if _, err := c.nc.Write([]byte(f + "\x00")); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next frame's text, skipping heart-beats.
func (c *rawConn) read() string {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		s, err := c.r.ReadString(0)
		if err != nil {
			c.t.Fatalf("read frame: %v", err)
		}
		s = strings.TrimLeft(strings.TrimSuffix(s, "\x00"), "\r\n")
		if s != "" {
			return s
		}
	}
}

// header returns a header of a frame's text.
func header(f, key string) string {
	for _, l := range strings.Split(f, "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return v
		}
	}
	return ""
}

func TestBrokerAckModes(t *testing.T) {
	_, addr := startBroker(t)
	p := dialRaw(t, addr)
	for i := range 3 {
		p.send(fmt.Sprintf("SEND\ndestination:/queue/q\nrecord-id:m%d\n\nbody%d", i, i))
	}
	p.send("SEND\ndestination:/queue/q\nreceipt:r1\n\nlast")
	if f := p.read(); !strings.HasPrefix(f, "RECEIPT") || header(f, "receipt-id") != "r1" {
		t.Fatalf("receipt %q", f)
	}

	// client mode: acking the third message acknowledges the first three.
	c := dialRaw(t, addr)
	c.send("SUBSCRIBE\nid:s1\ndestination:/queue/q\nack:client\nactivemq.prefetchSize:3")
	var acks []string
	for range 3 {
		f := c.read()
		acks = append(acks, header(f, "ack"))
	}
	c.send("ACK\nid:" + acks[2] + "\nreceipt:a")
	// The window opened: the fourth message arrives, with the receipt.
	var last string
	for range 2 {
		f := c.read()
		switch {
		case header(f, "receipt-id") == "a":
		case strings.HasSuffix(f, "last"):
			last = f
		default:
			t.Fatalf("unexpected frame %q", f)
		}
	}
	if last == "" {
		t.Fatal("fourth message not delivered after the cumulative ack")
	}
	// NACK puts it back; a new subscriber gets it.
	c.send("NACK\nid:" + header(last, "ack"))
	c.send("UNSUBSCRIBE\nid:s1\nreceipt:u")
	if f := c.read(); header(f, "receipt-id") != "u" && !strings.HasSuffix(f, "last") {
		t.Fatalf("unsubscribe %q", f)
	}
	d := dialRaw(t, addr)
	d.send("SUBSCRIBE\nid:s2\ndestination:/queue/q\nack:client-individual")
	if f := d.read(); !strings.HasSuffix(f, "last") {
		t.Fatalf("after nack %q", f)
	}
}

func TestBrokerTransactions(t *testing.T) {
	_, addr := startBroker(t)
	p := dialRaw(t, addr)
	p.send("BEGIN\ntransaction:t1")
	p.send("SEND\ndestination:/queue/t\ntransaction:t1\n\naborted")
	p.send("ABORT\ntransaction:t1")
	p.send("BEGIN\ntransaction:t2")
	p.send("SEND\ndestination:/queue/t\ntransaction:t2\n\ncommitted")
	p.send("COMMIT\ntransaction:t2\nreceipt:c")
	if f := p.read(); header(f, "receipt-id") != "c" {
		t.Fatalf("commit receipt %q", f)
	}
	p.send("COMMIT\ntransaction:nope")
	if f := p.read(); !strings.HasPrefix(f, "ERROR") {
		t.Fatalf("commit of unknown transaction: %q", f)
	}
	c := dialRaw(t, addr)
	c.send("SUBSCRIBE\nid:s\ndestination:/queue/t\nack:auto")
	if f := c.read(); !strings.HasSuffix(f, "committed") {
		t.Fatalf("got %q", f)
	}
}

func TestBrokerWithGoStompClient(t *testing.T) {
	_, addr := startBroker(t)
	// go-stomp's own client, STOMP 1.1 acknowledgements (message-id form).
	conn, err := stomp.Dial("tcp", addr, stomp.ConnOpt.AcceptVersion(stomp.V11))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Disconnect()
	sub, err := conn.Subscribe("/queue/g", stomp.AckClientIndividual)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := conn.Send("/queue/g", "text/plain", []byte(fmt.Sprint(i)), stomp.SendOpt.Receipt); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		m := <-sub.C
		if m.Err != nil || string(m.Body) != fmt.Sprint(i) {
			t.Fatalf("message %d: %v %q", i, m.Err, m.Body)
		}
		if err := conn.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzBrokerInput(f *testing.F) {
	f.Add([]byte("CONNECT\naccept-version:1.2\n\n\x00SEND\ndestination:/queue/a\n\nx\x00"))
	f.Add([]byte("STOMP\n\n\x00SUBSCRIBE\nid:1\ndestination:/queue/a\nack:client\n\n\x00ACK\nid:zz\n\n\x00"))
	f.Add([]byte("CONNECT\naccept-version:9.9\n\n\x00"))
	b := NewBroker("127.0.0.1:0", testConfig("").Logger)
	addr, err := b.Start()
	if err != nil {
		f.Fatal(err)
	}
	defer b.Stop()
	f.Fuzz(func(t *testing.T, in []byte) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = nc.Write(in)
		_ = nc.Close()
		// The broker still serves a well-behaved client.
		c, err := NewClient(testConfig(addr))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Send(context.Background(), Message{Destination: "/queue/fuzz-check", ID: "x"}); err != nil {
			t.Fatalf("broker broken after input %q: %v", in, err)
		}
	})
}
