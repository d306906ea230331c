package cdrstore

import (
	"bufio"
	"context"
	"fmt"
	"github.com/opengvp/gvp/internal/testenv"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/bus"
	"github.com/rs/zerolog"
)

// Durability tests: records flow from a SpooledPublisher through a broker
// (the embedded one, or ActiveMQ from GVP_TEST_ACTIVEMQ_STOMP started by
// scripts/activemq.sh) and a Consumer into a Store while one part is
// crashed and restarted; afterwards the store must hold exactly the
// records published.

const helperEnv = "GVP_CDRSTORE_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "producer" {
		os.Exit(runProducerHelper())
	}
	os.Exit(m.Run())
}

// envOrSkip returns env var name, failing when CI=true and it is unset,
// else skipping.
func envOrSkip(t testing.TB, name, hint string) string {
	t.Helper()
	return testenv.Service(t, name, hint)
}

// brokerFixture is a broker under test.
type brokerFixture struct {
	addr string
	// kill crashes the broker and restart brings it back (nil when the
	// broker cannot survive a crash: the embedded broker is in memory).
	kill, restart func()
}

type brokerKind struct {
	name  string
	start func(t *testing.T) brokerFixture
}

var brokerKinds = []brokerKind{
	{"embedded", func(t *testing.T) brokerFixture {
		b := bus.NewBroker("127.0.0.1:0", zerolog.Nop())
		addr, err := b.Start()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Stop() })
		return brokerFixture{addr: addr}
	}},
	{"activemq", func(t *testing.T) brokerFixture {
		addr := envOrSkip(t, "GVP_TEST_ACTIVEMQ_STOMP",
			"start ActiveMQ with GVP_ACTIVEMQ_STOMP_PORT=61713 GVP_ACTIVEMQ_PORT=61716 scripts/activemq.sh start and export its address")
		script := filepath.Join("..", "..", "scripts", "activemq.sh")
		run := func(cmd string) {
			out, err := exec.Command("bash", script, cmd).CombinedOutput()
			if err != nil {
				t.Fatalf("activemq.sh %s: %v\n%s", cmd, err, out)
			}
		}
		return brokerFixture{addr: addr, kill: func() { run("kill") }, restart: func() { run("start") }}
	}},
}

// queues returns destinations unique to one test run, so runs on a shared
// ActiveMQ never see each other's messages.
func queues(t testing.TB) (cdrQ, evQ string) {
	tag := fmt.Sprintf("%d", time.Now().UnixNano())
	return "/queue/gvp.test." + tag + ".cdr", "/queue/gvp.test." + tag + ".events"
}

func busConfig(addr string) bus.Config {
	c := bus.DefaultConfig()
	c.Addr = addr
	c.BackoffMin, c.BackoffMax = 20*time.Millisecond, 500*time.Millisecond
	c.HeartBeat = 2 * time.Second
	c.ReceiptTimeout = 10 * time.Second
	return c
}

func newPublisher(t testing.TB, dir, addr, cdrQ, evQ string) *billing.SpooledPublisher {
	t.Helper()
	client, err := bus.NewClient(busConfig(addr))
	if err != nil {
		t.Fatal(err)
	}
	cfg := billing.DefaultSpooledConfig(dir)
	cfg.CDRQueue, cfg.EventQueue = cdrQ, evQ
	cfg.RetryMin, cfg.RetryMax = 20*time.Millisecond, 500*time.Millisecond
	cfg.DrainTimeout = 60 * time.Second
	p, err := billing.NewSpooledPublisher(cfg, client)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// consumerRun is a running Consumer.
type consumerRun struct {
	c    *Consumer
	stop func()
}

func startConsumer(t testing.TB, store Store, addr, cdrQ, evQ string) *consumerRun {
	t.Helper()
	cfg := ConsumerConfig{Broker: busConfig(addr), CDRQueue: cdrQ, EventQueue: evQ,
		RetryMin: 20 * time.Millisecond, RetryMax: 500 * time.Millisecond, CommitTimeout: 5 * time.Second,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.ErrorLevel)}
	c, err := NewConsumer(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return &consumerRun{c: c, stop: stop}
}

// call returns the records of call i: the start CDR, an event and the end CDR.
func call(tag string, i int) []billing.Record {
	start := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	c := &billing.CDR{ID: fmt.Sprintf("%s-%06d", tag, i), SessionID: fmt.Sprintf("s-%s-%06d", tag, i),
		Component: billing.ComponentRM, ComponentName: "rm1", State: billing.StateInProgress, TenantID: "t1",
		TenantName: "t100", Profile: "billing", DNIS: "5551000", ANI: "5550001", CallID: fmt.Sprint(i), Start: start}
	end := *c
	end.Complete(start.Add(30*time.Second), billing.EndCallerHangup, "", 0)
	ev := &billing.Event{ID: "ev-" + c.ID, SessionID: c.SessionID, Time: start.Add(time.Second), Kind: "prompt"}
	return []billing.Record{c, ev, &end}
}

func publishCalls(t testing.TB, p billing.Publisher, tag string, from, to int, pace time.Duration) {
	t.Helper()
	for i := from; i < to; i++ {
		for _, r := range call(tag, i) {
			if err := p.Publish(r); err != nil {
				t.Errorf("publish %s: %v", r.RecordID(), err)
				return
			}
		}
		if pace > 0 && i%50 == 0 {
			time.Sleep(pace)
		}
	}
}

// counts returns (completed CDRs, all CDRs, events) with ids of tag.
func counts(t testing.TB, s *SQLStore, tag string) (completed, cdrs, events int) {
	t.Helper()
	q := s.rebind("SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 'completed' THEN 1 ELSE 0 END), 0) FROM cdrs WHERE record_id LIKE ?")
	if err := s.db.QueryRow(q, tag+"-%").Scan(&cdrs, &completed); err != nil {
		return -1, -1, -1
	}
	if err := s.db.QueryRow(s.rebind("SELECT COUNT(*) FROM events WHERE record_id LIKE ?"), "ev-"+tag+"-%").Scan(&events); err != nil {
		return -1, -1, -1
	}
	return completed, cdrs, events
}

// waitStored waits until n calls are fully stored, then checks that
// nothing more (no duplicate) is there.
func waitStored(t testing.TB, s *SQLStore, tag string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var completed, cdrs, events int
	for time.Now().Before(deadline) {
		completed, cdrs, events = counts(t, s, tag)
		if completed == n && events == n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if completed != n || cdrs != n || events != n {
		t.Fatalf("stored %d completed CDRs (%d rows) and %d events, want exactly %d of each", completed, cdrs, events, n)
	}
}

// durabilityCalls is the number of calls (3 records each) per test.
const durabilityCalls = 2000

func TestDurabilityBrokerCrash(t *testing.T) {
	for _, bk := range brokerKinds {
		if bk.name == "embedded" {
			continue // in memory by design: a crash of it loses what it holds
		}
		t.Run(bk.name, func(t *testing.T) {
			br := bk.start(t)
			store := openSQLiteTest(t)
			cdrQ, evQ := queues(t)
			tag := "bc" + strconv.FormatInt(time.Now().UnixNano(), 36)
			startConsumer(t, store, br.addr, cdrQ, evQ)
			p := newPublisher(t, t.TempDir(), br.addr, cdrQ, evQ)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				publishCalls(t, p, tag, 0, durabilityCalls, 5*time.Millisecond)
			}()
			waitProgress(t, store, tag, durabilityCalls/4)
			br.kill()
			time.Sleep(500 * time.Millisecond)
			br.restart()
			wg.Wait()
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if !t.Failed() {
					return
				}
				// Tell lost from stuck: drain what the broker still holds.
				other := openSQLiteTest(t)
				startConsumer(t, other, br.addr, cdrQ, evQ)
				time.Sleep(5 * time.Second)
				c, r, e := counts(t, other, tag)
				t.Logf("a fresh consumer still found %d CDR rows (%d completed) and %d events in the broker", r, c, e)
			})
			waitStored(t, store, tag, durabilityCalls, 90*time.Second)
		})
	}
}

// waitProgress waits until at least n CDR rows of tag are stored.
func waitProgress(t testing.TB, s *SQLStore, tag string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, cdrs, _ := counts(t, s, tag); cdrs >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("fewer than %d records stored after 60s", n)
}

func TestDurabilityConsumerRestart(t *testing.T) {
	for _, bk := range brokerKinds {
		t.Run(bk.name, func(t *testing.T) {
			br := bk.start(t)
			store := openSQLiteTest(t)
			cdrQ, evQ := queues(t)
			tag := "cr" + strconv.FormatInt(time.Now().UnixNano(), 36)
			c1 := startConsumer(t, store, br.addr, cdrQ, evQ)
			p := newPublisher(t, t.TempDir(), br.addr, cdrQ, evQ)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				publishCalls(t, p, tag, 0, durabilityCalls, 5*time.Millisecond)
			}()
			waitProgress(t, store, tag, durabilityCalls/4)
			c1.stop()
			time.Sleep(300 * time.Millisecond)
			startConsumer(t, store, br.addr, cdrQ, evQ)
			wg.Wait()
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			waitStored(t, store, tag, durabilityCalls, 90*time.Second)
		})
	}
}

// privatePostgres starts a PostgreSQL cluster of this test's own with
// scripts/postgres.sh (port and state folder of its own), so it can be
// stopped without disturbing other tests.
type privatePostgres struct {
	t   *testing.T
	env []string
	dsn string
}

func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	if _, err := os.Stat("/usr/lib/postgresql"); err != nil {
		testenv.Missing(t, "PostgreSQL is not installed (scripts/postgres.sh start installs it)")
	}
	dir, err := os.MkdirTemp("", "gvp-pg-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755) // the postgres user must reach its data folder
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	pg := &privatePostgres{t: t, env: append(os.Environ(), "GVP_SERVICES_DIR="+dir, "GVP_PG_PORT="+strconv.Itoa(port))}
	pg.dsn = strings.TrimSpace(lastLine(pg.run("start")))
	t.Cleanup(func() {
		pg.run("stop")
		_ = os.RemoveAll(dir)
	})
	return pg
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func (pg *privatePostgres) run(cmd string) string {
	pg.t.Helper()
	c := exec.Command("bash", filepath.Join("..", "..", "scripts", "postgres.sh"), cmd)
	c.Env = pg.env
	out, err := c.Output()
	if err != nil {
		pg.t.Fatalf("postgres.sh %s: %v\n%s", cmd, err, out)
	}
	return string(out)
}

func TestDurabilityDatabaseRestart(t *testing.T) {
	pg := startPrivatePostgres(t)
	for _, bk := range brokerKinds {
		t.Run(bk.name, func(t *testing.T) {
			br := bk.start(t)
			store, err := OpenPostgres(context.Background(), pg.dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = store.Close() })
			cdrQ, evQ := queues(t)
			tag := "db" + strconv.FormatInt(time.Now().UnixNano(), 36)
			cons := startConsumer(t, store, br.addr, cdrQ, evQ)
			p := newPublisher(t, t.TempDir(), br.addr, cdrQ, evQ)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				publishCalls(t, p, tag, 0, durabilityCalls, 5*time.Millisecond)
			}()
			waitProgress(t, store, tag, durabilityCalls/4)
			pg.run("stop")
			// The consumer notices, stops consuming and says why.
			deadline := time.Now().Add(30 * time.Second)
			for cons.c.Ready() == nil && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if err := cons.c.Ready(); err == nil || !strings.Contains(err.Error(), "database") {
				t.Fatalf("consumer readiness with the database down: %v", err)
			}
			time.Sleep(500 * time.Millisecond)
			pg.run("start")
			wg.Wait()
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			waitStored(t, store, tag, durabilityCalls, 90*time.Second)
			if err := cons.c.Ready(); err != nil {
				t.Fatalf("consumer not ready again: %v", err)
			}
		})
	}
}

func TestDurabilityProducerKilled(t *testing.T) {
	for _, bk := range brokerKinds {
		t.Run(bk.name, func(t *testing.T) {
			br := bk.start(t)
			store := openSQLiteTest(t)
			cdrQ, evQ := queues(t)
			tag := "pk" + strconv.FormatInt(time.Now().UnixNano(), 36)
			startConsumer(t, store, br.addr, cdrQ, evQ)
			spool := t.TempDir()
			helper := func(from int) *exec.Cmd {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), helperEnv+"=producer", "HELPER_SPOOL="+spool, "HELPER_BROKER="+br.addr,
					"HELPER_CDRQ="+cdrQ, "HELPER_EVQ="+evQ, "HELPER_TAG="+tag,
					"HELPER_FROM="+strconv.Itoa(from), "HELPER_TO="+strconv.Itoa(durabilityCalls))
				cmd.Stderr = os.Stderr
				return cmd
			}
			// First producer: killed with SIGKILL halfway.
			cmd := helper(0)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			last := -1
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if n, err := strconv.Atoi(sc.Text()); err == nil {
					last = n
				}
				if last >= durabilityCalls/2 {
					_ = cmd.Process.Signal(syscall.SIGKILL)
					break
				}
			}
			_ = cmd.Wait()
			if last < durabilityCalls/2 {
				t.Fatalf("producer stopped early at call %d", last)
			}
			// Second producer: same spool, resends what the first left,
			// then publishes the rest (call last may be published twice).
			cmd = helper(last + 1)
			if b, err := cmd.Output(); err != nil {
				t.Fatalf("second producer: %v\n%s", err, b)
			}
			waitStored(t, store, tag, durabilityCalls, 90*time.Second)
		})
	}
}

// runProducerHelper is the producer subprocess: it publishes calls
// HELPER_FROM..HELPER_TO, printing each finished call's number, then waits
// until the broker has everything.
func runProducerHelper() int {
	from, _ := strconv.Atoi(os.Getenv("HELPER_FROM"))
	to, _ := strconv.Atoi(os.Getenv("HELPER_TO"))
	client, err := bus.NewClient(busConfig(os.Getenv("HELPER_BROKER")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg := billing.DefaultSpooledConfig(os.Getenv("HELPER_SPOOL"))
	cfg.CDRQueue, cfg.EventQueue = os.Getenv("HELPER_CDRQ"), os.Getenv("HELPER_EVQ")
	cfg.DrainTimeout = 60 * time.Second
	p, err := billing.NewSpooledPublisher(cfg, client)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w := bufio.NewWriter(os.Stdout)
	tag := os.Getenv("HELPER_TAG")
	for i := from; i < to; i++ {
		for _, r := range call(tag, i) {
			if err := p.Publish(r); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		fmt.Fprintln(w, i)
		_ = w.Flush()
		if i%50 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := p.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if st := p.Stats(); st.Records != 0 {
		fmt.Fprintf(os.Stderr, "%d records left in the spool\n", st.Records)
		return 1
	}
	return 0
}

// benchPipeline measures records per second from Publish to committed rows.
func benchPipeline(b *testing.B, store *SQLStore, addr string) {
	cdrQ, evQ := queues(b)
	tag := "bench" + strconv.FormatInt(time.Now().UnixNano(), 36)
	startConsumer(b, store, addr, cdrQ, evQ)
	p := newPublisher(b, b.TempDir(), addr, cdrQ, evQ)
	defer p.Close()
	n := b.N
	start := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	for i := range n {
		c := &billing.CDR{ID: fmt.Sprintf("%s-%08d", tag, i), SessionID: "s", Component: billing.ComponentRM,
			State: billing.StateCompleted, TenantID: "t1", Profile: "p", DNIS: "5551000", Start: start}
		c.Complete(start.Add(time.Minute), billing.EndCallerHangup, "", 0)
		if err := p.Publish(c); err != nil {
			b.Fatal(err)
		}
	}
	var stored atomic.Int64
	for stored.Load() < int64(n) {
		_, cdrs, _ := counts(b, store, tag)
		stored.Store(int64(cdrs))
		if time.Since(t0) > 5*time.Minute {
			b.Fatalf("only %d of %d stored", cdrs, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	el := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(n)/el.Seconds(), "records/s")
}

func BenchmarkPipeline(b *testing.B) {
	stores := []struct {
		name string
		open func(testing.TB) *SQLStore
	}{{"sqlite", openSQLiteTest}, {"postgres", openPostgresTest}}
	for _, st := range stores {
		b.Run(st.name+"/embedded", func(b *testing.B) {
			br := bus.NewBroker("127.0.0.1:0", zerolog.Nop())
			addr, err := br.Start()
			if err != nil {
				b.Fatal(err)
			}
			defer br.Stop()
			benchPipeline(b, st.open(b), addr)
		})
		b.Run(st.name+"/activemq", func(b *testing.B) {
			addr := envOrSkip(b, "GVP_TEST_ACTIVEMQ_STOMP", "start ActiveMQ with scripts/activemq.sh start")
			benchPipeline(b, st.open(b), addr)
		})
	}
}
