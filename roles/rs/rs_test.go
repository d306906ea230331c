package rs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/admin"
	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/bus"
	"github.com/opengvp/gvp/internal/cdrstore"
	"github.com/opengvp/gvp/internal/config"
	"github.com/opengvp/gvp/internal/lifecycle"
	"github.com/opengvp/gvp/internal/testenv"
	"github.com/rs/zerolog"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate("rs"); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cases := map[string]func(*Config){
		"rs.listen":               func(c *Config) { c.Listen = "nowhere" },
		"rs.retention":            func(c *Config) { c.Retention = time.Minute },
		"rs.retention_events":     func(c *Config) { c.RetentionEvents = 0 },
		"rs.retention_aggregates": func(c *Config) { c.RetentionAggregates = -time.Hour },
		"rs.maintenance_interval": func(c *Config) { c.MaintenanceInterval = time.Second },
		"rs.maintenance_delay":    func(c *Config) { c.MaintenanceDelay = -time.Second },
		"rs.timezone":             func(c *Config) { c.Timezone = "Mars/Olympus" },
		"rs.batch_size":           func(c *Config) { c.BatchSize = 0 },
		"rs.prefetch":             func(c *Config) { c.Prefetch = 0 },
		"rs.database.dsn":         func(c *Config) { c.Database.Driver = config.DriverPostgres },
	}
	for key, mutate := range cases {
		c := DefaultConfig()
		mutate(&c)
		err := c.Validate("rs")
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v", key, err)
		}
	}
}

// role is an rs started in-process as the lifecycle manager would start it.
type role struct {
	srv  *Server
	url  string
	errs chan error
}

func startRole(t *testing.T, cfg Config, broker, dataDir string) *role {
	t.Helper()
	r := &role{errs: make(chan error, 1)}
	var srv *Server
	common := lifecycle.Common{
		Log:      zerolog.Nop(),
		Metrics:  admin.NewRegistry(),
		Ready:    func() error { return srv.Ready() },
		Fatal:    func(err error) { r.errs <- err },
		Draining: func() bool { return false },
	}
	srv, err := New(cfg, Deps{Common: common, DataDir: dataDir, Broker: broker})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
	})
	r.srv, r.url = srv, srv.URL()
	return r
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func cdrTotal(t *testing.T, url string) int {
	t.Helper()
	code, body := httpGet(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	var l CDRList
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatal(err)
	}
	return l.Total
}

// TestEndToEnd publishes calls through the spooled publisher to the embedded broker and reads
// them back from the running role's reports, on SQLite and PostgreSQL.
func TestEndToEnd(t *testing.T) {
	for _, driver := range []string{config.DriverSQLite, config.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen = "127.0.0.1:0"
			cfg.MaintenanceDelay = 0 // aggregate at once
			if driver == config.DriverPostgres {
				cfg.Database = config.Database{Driver: driver, DSN: privateSchema(t)}
			}
			broker := bus.NewBroker("127.0.0.1:0", zerolog.Nop())
			addr, err := broker.Start()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = broker.Stop() })
			r := startRole(t, cfg, addr, t.TempDir())
			testenv.Eventually(t, 10*time.Second, "rs ready", func() bool { return r.srv.Ready() == nil })
			if code, body := httpGet(t, r.url+"/readyz"); code != 200 {
				t.Fatalf("readyz %d %s", code, body)
			}

			client, err := bus.NewClient(bus.Config{Addr: addr})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = client.Close() })
			pub, err := billing.NewSpooledPublisher(billing.DefaultSpooledConfig(t.TempDir()), client)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = pub.Close() })

			const calls = 50
			start := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
			var cdrs []*billing.CDR
			for i := range calls {
				c := &billing.CDR{ID: billing.NewRecordID(), SessionID: fmt.Sprintf("e2e-%03d", i), Component: billing.ComponentRM,
					ComponentName: "rm-0", State: billing.StateInProgress, TenantID: "80dd", TenantName: "t100",
					Profile: "billing", DNIS: "5551000", ANI: "5550001", Start: start.Add(time.Duration(i) * time.Millisecond)}
				cdrs = append(cdrs, c)
				if err := pub.Publish(c); err != nil {
					t.Fatal(err)
				}
				if err := pub.Publish(billing.NewEvent(c.SessionID, c.Start, "call_start", "")); err != nil {
					t.Fatal(err)
				}
			}
			rt := r.url + "/ems-rs/RT/CDRs/RM/details?tenant-id=80dd"
			testenv.Eventually(t, 10*time.Second, "calls in progress", func() bool { return cdrTotal(t, rt) == calls })
			for _, c := range cdrs {
				copyC := *c
				copyC.Complete(c.Start.Add(30*time.Second), billing.EndCallerHangup, "", 0)
				if err := pub.Publish(&copyC); err != nil {
					t.Fatal(err)
				}
				// The mcp's view of the call, with its events.
				mc := copyC
				mc.ID, mc.Component, mc.ComponentName = billing.NewRecordID(), billing.ComponentMCP, "mcp-0"
				if err := pub.Publish(&mc); err != nil {
					t.Fatal(err)
				}
			}
			hist := r.url + "/ems-rs/HIST/CDRs/RM/details?tenant-id=80dd&page-size=10"
			testenv.Eventually(t, 10*time.Second, "completed calls", func() bool { return cdrTotal(t, hist) == calls })
			if n := cdrTotal(t, rt); n != 0 {
				t.Errorf("%d calls still in progress", n)
			}
			testenv.Eventually(t, 10*time.Second, "mcp cdrs", func() bool {
				return cdrTotal(t, r.url+"/ems-rs/HIST/CDRs/MCP/details") == calls
			})
			code, body := httpGet(t, r.url+"/ems-rs/HIST/CDRs/MCP/events?session-id=e2e-007")
			if code != 200 || !strings.Contains(body, `"kind":"call_start"`) {
				t.Errorf("events: %d %s", code, body)
			}

			// A redelivered record changes nothing and is counted as a duplicate.
			if err := pub.Publish(cdrs[0]); err != nil { // the start again, after the end
				t.Fatal(err)
			}
			testenv.Eventually(t, 10*time.Second, "duplicate counted", func() bool { return r.srv.Consumer().Duplicates() >= 1 })
			if n := cdrTotal(t, hist); n != calls {
				t.Errorf("after a duplicate: %d completed calls", n)
			}
			_, metrics := httpGet(t, r.url+"/metrics")
			for _, m := range []string{"gvp_rs_queue_size 0", `gvp_rs_records_stored_total{destination="/queue/gvp.cdr"} 151`, /* duplicates included */
				"gvp_rs_records_duplicate_total 1", "gvp_rs_db_errors_total 0", "gvp_rs_batch_commit_seconds_count",
				`gvp_rs_maintenance_runs_total{result="ok"}`} {
				if !strings.Contains(metrics, m) {
					t.Errorf("metrics lack %q", m)
				}
			}

			// Usage and arrivals over the same data.
			code, body = httpGet(t, r.url+"/ems-rs/RT/tenants/usage")
			if code != 200 || !strings.Contains(body, `"tenant_id":"80dd"`) {
				t.Errorf("usage: %d %s", code, body)
			}
			code, body = httpGet(t, r.url+"/ems-rs/HIST/arrivals?interval=1h&tenant-id=80dd")
			var a ArrivalsReport
			if err := json.Unmarshal([]byte(body), &a); code != 200 || err != nil || sumArrivals(a) != calls {
				t.Errorf("arrivals: %d %s", code, body)
			}

			// Broker gone: not ready, with the reason; back when it returns.
			_ = broker.Stop()
			testenv.Eventually(t, 10*time.Second, "not ready without broker", func() bool {
				code, body := httpGet(t, r.url+"/readyz")
				return code == http.StatusServiceUnavailable && strings.Contains(body, "broker unavailable")
			})

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := r.srv.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			// The reports keep answering during the drain.
			if n := cdrTotal(t, hist); n != calls {
				t.Errorf("after drain: %d", n)
			}
			if err := r.srv.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-r.errs:
				t.Fatalf("fatal: %v", err)
			default:
			}
		})
	}
}

func sumArrivals(a ArrivalsReport) int {
	n := 0
	for _, s := range a.Intervals {
		n += s.Arrivals
	}
	return n
}

// privateSchema returns a DSN of a PostgreSQL schema of the test's own, dropped afterwards.
func privateSchema(t *testing.T) string {
	t.Helper()
	dsn := testenv.Service(t, "GVP_TEST_POSTGRES_DSN", "scripts/postgres.sh start")
	ctx := context.Background()
	adm, err := cdrstore.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("gvp_rs_test_%d_%d", time.Now().UnixNano(), rand.IntN(1<<30))
	if _, err := adm.DB().ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = adm.DB().ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
		_ = adm.Close()
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + schema
}

// TestSQLiteFileLocation checks the default database file and that a database which cannot be
// opened fails the start with the reason.
func TestSQLiteFileLocation(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	r := startRole(t, cfg, "127.0.0.1:1", dir+"/data")
	if r.srv.Store() == nil {
		t.Fatal("no store")
	}
	if _, err := cdrstore.OpenSQLiteFile(context.Background(), dir+"/data/"+SQLiteFile); err != nil {
		t.Fatal(err)
	}
	// No broker at 127.0.0.1:1: not ready, with the reason.
	testenv.Eventually(t, 10*time.Second, "broker reason", func() bool {
		err := r.srv.Ready()
		return err != nil && strings.Contains(err.Error(), "broker unavailable")
	})

	// A database path under a regular file cannot be created.
	if err := os.WriteFile(dir+"/afile", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := DefaultConfig()
	bad.Listen = "127.0.0.1:0"
	bad.Database.DSN = dir + "/afile/rs.db"
	srv, err := New(bad, Deps{Common: lifecycle.Common{Log: zerolog.Nop()}, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "rs database") {
		t.Fatalf("start with an impossible database path: %v", err)
	}
	_ = srv.Stop(context.Background())
}
