package sd

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/opengvp/gvp/internal/confclient"
	"github.com/opengvp/gvp/internal/confmodel"
	"github.com/opengvp/gvp/internal/confstore"
	"github.com/opengvp/gvp/internal/discovery"
	"github.com/opengvp/gvp/internal/lifecycle"
	"github.com/opengvp/gvp/internal/testenv"
	"github.com/opengvp/gvp/roles/configsrv"
)

// confServer is a configsrv over httptest on a temporary SQLite store; Down makes every request
// fail with 503 as if the server were unreachable.
type confServer struct {
	URL   string
	Store confstore.Store
	CC    *confclient.Client
	Down  atomic.Bool
}

func newConfServer(t *testing.T) *confServer {
	t.Helper()
	st, err := confstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	cs := &confServer{Store: st}
	api := configsrv.NewAPI(st)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cs.Down.Load() {
			http.Error(w, `{"error":"down"}`, http.StatusServiceUnavailable)
			return
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); st.Close() })
	cs.URL = srv.URL
	cs.CC, err = confclient.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// members returns the MCPs of pool by name.
func (cs *confServer) members(t *testing.T, pool string) map[string]*confmodel.MCP {
	t.Helper()
	objs, _, err := cs.CC.List(context.Background(), confmodel.KindMCP, confclient.ListFilter{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*confmodel.MCP{}
	for _, o := range objs {
		m := o.(*confmodel.MCP)
		out[m.Name] = m
	}
	return out
}

func (cs *confServer) revision(t *testing.T) int64 {
	t.Helper()
	r, err := cs.CC.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testConfig is a config for fast tests: loopback admin, short intervals, no recovery grace.
func testConfig() Config {
	c := DefaultConfig()
	c.Admin.Listen = "127.0.0.1:0"
	c.Resync = time.Second
	c.FirstResync = time.Second
	c.Wait = time.Second
	c.RecoveryGrace = 0
	c.InventoryPoll = 100 * time.Millisecond
	return c
}

// startSD starts the role in-process and stops it when the test ends.
func startSD(t *testing.T, cfg Config, reg discovery.Registry, configsrvURL string) *SD {
	t.Helper()
	s, err := New(cfg, Deps{
		Common:       lifecycle.Common{Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), Metrics: prometheus.NewRegistry()},
		ConfigsrvURL: configsrvURL,
		Registry:     reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return s
}

// syncRuns returns how many sync passes ended with result.
func (s *SD) syncRuns(result string) float64 {
	return testutil.ToFloat64(s.m.syncRuns.WithLabelValues(result))
}

// waitSyncs waits until n more successful passes than before ran: whatever they saw is applied.
func waitSyncs(t *testing.T, s *SD, n int) {
	t.Helper()
	start := s.syncRuns("ok")
	testenv.Eventually(t, 15*time.Second, "sync passes", func() bool {
		s.SyncNow()
		return s.syncRuns("ok") >= start+float64(n)
	})
}

// waitMembers waits until pool holds exactly the named members.
func waitMembers(t *testing.T, cs *confServer, pool string, d time.Duration, want ...string) map[string]*confmodel.MCP {
	t.Helper()
	var got map[string]*confmodel.MCP
	testenv.Eventually(t, d, "pool members "+join(want), func() bool {
		got = cs.members(t, pool)
		if len(got) != len(want) {
			return false
		}
		for _, w := range want {
			if got[w] == nil {
				return false
			}
		}
		return true
	})
	return got
}

func join(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

// flakyRegistry fails every call while Fail is set.
type flakyRegistry struct {
	discovery.Registry
	Fail atomic.Bool
}

var errAgentDown = errors.New("agent unreachable")

func (f *flakyRegistry) Passing(ctx context.Context, service string, q discovery.QueryOptions) ([]discovery.Instance, uint64, error) {
	if f.Fail.Load() {
		return nil, 0, errAgentDown
	}
	return f.Registry.Passing(ctx, service, q)
}

func (f *flakyRegistry) KVGet(ctx context.Context, key string) ([]byte, bool, error) {
	if f.Fail.Load() {
		return nil, false, errAgentDown
	}
	return f.Registry.KVGet(ctx, key)
}

func (f *flakyRegistry) KVPut(ctx context.Context, key string, v []byte) error {
	if f.Fail.Load() {
		return errAgentDown
	}
	return f.Registry.KVPut(ctx, key, v)
}
