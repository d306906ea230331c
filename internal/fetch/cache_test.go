package fetch

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/vxml"
)

func TestParseCacheControl(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want cacheControl
	}{
		{nil, cacheControl{}},
		{[]string{"max-age=60"}, cacheControl{maxAge: time.Minute, hasMaxAge: true}},
		{[]string{`max-age="60"`}, cacheControl{maxAge: time.Minute, hasMaxAge: true}},
		{[]string{"MAX-AGE=5, No-Store"}, cacheControl{maxAge: 5 * time.Second, hasMaxAge: true, noStore: true}},
		{[]string{"max-age=60", "max-age=10"}, cacheControl{maxAge: 10 * time.Second, hasMaxAge: true}},
		{[]string{"max-age=abc"}, cacheControl{hasMaxAge: true}},
		{[]string{"max-age=-1"}, cacheControl{hasMaxAge: true}},
		{[]string{"max-age=99999999999999999999"}, cacheControl{maxAge: maxDeltaSeconds * time.Second, hasMaxAge: true}},
		{[]string{`no-cache="Set-Cookie, X", must-revalidate`}, cacheControl{noCache: true, mustRevalidate: true}},
		{[]string{"private, s-maxage=600, public"}, cacheControl{private: true, hasSMaxAge: true, public: true}},
		{[]string{"proxy-revalidate"}, cacheControl{proxyRevalidate: true}},
		{[]string{" , ,no-store,,"}, cacheControl{noStore: true}},
		{[]string{`ext="a,\"b,max-age=1", max-age=7`}, cacheControl{maxAge: 7 * time.Second, hasMaxAge: true}},
	} {
		h := http.Header{}
		for _, v := range tc.in {
			h.Add("Cache-Control", v)
		}
		if got := parseCacheControl(h); got != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60, no-cache", `no-cache="a,b"`, `x="\"`, "max-age=1,max-age=0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h := http.Header{"Cache-Control": {s}, "Vary": {s}, "Age": {s}, "Expires": {s}}
		cc := parseCacheControl(h)
		if cc.maxAge < 0 || cc.maxAge > maxDeltaSeconds*time.Second {
			t.Fatalf("max-age %v out of range", cc.maxAge)
		}
		now := time.Unix(1e9, 0)
		l, age, _ := freshness(h, cc, 200, now, now, 0.1)
		if l < 0 || age < 0 {
			t.Fatalf("negative lifetime %v or age %v", l, age)
		}
		parseVary(h)
	})
}

func TestFreshnessAgeCalculation(t *testing.T) {
	date := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	h := http.Header{"Date": {date.Format(http.TimeFormat)}, "Age": {"5"}, "Cache-Control": {"max-age=100"}}
	// Request sent at date, response received 2 s later: delay 2 s.
	l, age, explicit := freshness(h, parseCacheControl(h), 200, date, date.Add(2*time.Second), 0)
	if l != 100*time.Second || age != 7*time.Second || !explicit {
		t.Fatalf("lifetime %v age %v explicit %v", l, age, explicit)
	}
	// A Date 30 s in the past (clock skew or upstream delay): apparent age wins.
	l, age, _ = freshness(h, parseCacheControl(h), 200, date.Add(30*time.Second), date.Add(30*time.Second), 0)
	if l != 100*time.Second || age != 30*time.Second {
		t.Fatalf("lifetime %v age %v", l, age)
	}
}

func TestLRUEviction(t *testing.T) {
	c := newCache(1000)
	put := func(key string, size int64) { c.put(&entry{key: key, size: size}) }
	put("a", 300)
	put("b", 300)
	put("c", 300)
	c.get("a") // a is now the most recent: b is the eviction candidate
	put("d", 300)
	if c.get("b") != nil || c.get("a") == nil || c.get("c") == nil || c.get("d") == nil {
		t.Fatal("wrong entry evicted")
	}
	if b, n := c.stats(); b != 900 || n != 3 {
		t.Fatalf("stats %d bytes %d entries", b, n)
	}
	put("huge", 2000) // larger than the cache: not stored, nothing evicted
	if c.get("huge") != nil {
		t.Fatal("oversized entry stored")
	}
	put("a", 100) // replacement adjusts the size
	if b, n := c.stats(); b != 700 || n != 3 {
		t.Fatalf("after replace: %d bytes %d entries", b, n)
	}
	c.remove("a")
	c.remove("missing")
	if b, n := c.stats(); b != 600 || n != 2 {
		t.Fatalf("after remove: %d bytes %d entries", b, n)
	}
}

func TestCacheBoundedByBytes(t *testing.T) {
	o := newOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write(make([]byte, 10_000))
	})
	f := newFetcher(t, newClock(), func(c *Config) { c.CacheBytes = 50_000 })
	for i := range 20 {
		mustGet(t, f, o.URL+"/p"+string(rune('a'+i)))
	}
	b, n := f.CacheStats()
	if b > 50_000 || n < 3 || n > 4 {
		t.Fatalf("cache holds %d bytes in %d entries, limit 50000", b, n)
	}
}

// BenchmarkCacheHit measures a fresh cache hit through vxml.Fetcher.
func BenchmarkCacheHit(b *testing.B) {
	o := newOriginB(b)
	f := newFetcher(b, nil, nil)
	req := &vxml.FetchRequest{URL: o + "/prompt.wav", Kind: vxml.FetchAudio, Method: "GET", MaxAge: -1, MaxStale: -1}
	ctx := context.Background()
	if _, err := f.Fetch(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := f.Fetch(ctx, req)
		if err != nil || len(res.Body) != 16000 {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheHitParallel measures hits from many goroutines (calls).
func BenchmarkCacheHitParallel(b *testing.B) {
	o := newOriginB(b)
	f := newFetcher(b, nil, nil)
	ctx := context.Background()
	u := o + "/prompt.wav"
	if _, err := f.Get(ctx, u); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.Get(ctx, u); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func newOriginB(b *testing.B) string {
	srv := newOriginServer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Write(make([]byte, 16000))
	})
	b.Cleanup(srv.Close)
	return srv.URL
}

// BenchmarkOriginFetch measures an uncached fetch over a loopback
// keep-alive connection (no-store response of 16 kB).
func BenchmarkOriginFetch(b *testing.B) {
	srv := newOriginServer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Write(make([]byte, 16000))
	})
	b.Cleanup(srv.Close)
	f := newFetcher(b, nil, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Get(ctx, srv.URL); err != nil {
			b.Fatal(err)
		}
	}
}
