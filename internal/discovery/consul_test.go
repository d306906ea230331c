package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/testenv"
)

// consulRegistry returns a registry on the test Consul agent.
func consulRegistry(t *testing.T) *Consul {
	t.Helper()
	addr := testenv.Service(t, "GVP_TEST_CONSUL", "scripts/consul.sh start")
	r, err := NewConsul(addr)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestConsulRegisterCheckDeregister(t *testing.T) {
	r := consulRegistry(t)
	ctx := context.Background()
	service := fmt.Sprintf("gvp-test-%d", time.Now().UnixNano())
	srv, ready := readyServer(t)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	in := Instance{ID: service + "-a", Service: service, Address: host, Port: p,
		Meta:   map[string]string{MetaCapacity: "7", MetaTransport: "tcp"},
		Check:  &Check{HTTP: srv.URL + "/readyz", Interval: time.Second, Timeout: time.Second, DeregisterCriticalAfter: time.Minute},
		Status: StatusPassing}
	if err := r.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Deregister(context.Background(), in.ID) })
	if ok, err := r.Registered(ctx, in.ID); err != nil || !ok {
		t.Fatalf("registered: %v %v", ok, err)
	}

	wait := func(want ...string) uint64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		var idx uint64
		for {
			ins, next, err := r.Passing(ctx, service, QueryOptions{WaitIndex: idx, WaitTime: 2 * time.Second})
			if err != nil {
				t.Fatalf("waiting for %v: %v", want, err)
			}
			if equal(ids(ins), want) {
				if len(ins) == 1 && (ins[0].Meta[MetaCapacity] != "7" || ins[0].Address != host || ins[0].Port != p) {
					t.Fatalf("instance read back: %+v", ins[0])
				}
				return next
			}
			if next < idx {
				next = 0
			}
			idx = next
		}
	}
	wait(in.ID)
	ready.Store(false)
	wait()
	ready.Store(true)
	wait(in.ID)

	if err := r.Deregister(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	wait()
	if ok, _ := r.Registered(ctx, in.ID); ok {
		t.Fatal("still registered")
	}
	if err := r.Deregister(ctx, in.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deregister of an unknown id: %v", err)
	}
}

func TestConsulKV(t *testing.T) {
	r := consulRegistry(t)
	ctx := context.Background()
	key := fmt.Sprintf("gvp-test/%d", time.Now().UnixNano())
	if _, ok, err := r.KVGet(ctx, key); ok || err != nil {
		t.Fatalf("missing key: %v %v", ok, err)
	}
	if err := r.KVPut(ctx, key, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := r.KVGet(ctx, key); err != nil || !ok || string(v) != "v1" {
		t.Fatalf("get: %q %v %v", v, ok, err)
	}
	if err := r.KVDelete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := r.KVGet(ctx, key); ok {
		t.Fatal("deleted key still there")
	}
}

func TestConsulUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	r, err := NewConsul(addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := r.Passing(ctx, ServiceMCP, QueryOptions{}); err == nil {
		t.Fatal("query of a closed port succeeded")
	}
	if err := r.Register(ctx, inst("a", 5070)); err == nil {
		t.Fatal("register on a closed port succeeded")
	}
}
