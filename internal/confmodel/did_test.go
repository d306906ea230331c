package confmodel

import (
	"fmt"
	"strconv"
	"testing"
)

func TestParsePattern(t *testing.T) {
	tests := []struct {
		in      string
		typ     PatternType
		wantErr bool
	}{
		{"5551000", PatternExact, false},
		{"+15551000", PatternExact, false},
		{"300-400", PatternRange, false},
		{"0100-0199", PatternRange, false},
		{"400-300", 0, true},
		{"30-400", 0, true},
		{"-400", 0, true},
		{"300-", 0, true},
		{"3a0-400", 0, true},
		{"1234567890123456789-1234567890123456799", 0, true},
		{"45*", PatternPrefix, false},
		{"+1*", PatternPrefix, false},
		{"*", PatternPrefix, false},
		{"4*5", 0, true},
		{"**", 0, true},
		{"", 0, true},
		{"+", 0, true},
		{"555 1000", 0, true},
		{"abc", 0, true},
		{"123456789012345678901234567890123", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePattern(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParsePattern(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if err == nil && p.Type != tt.typ {
				t.Fatalf("ParsePattern(%q) type = %v, want %v", tt.in, p.Type, tt.typ)
			}
		})
	}
}

func TestPatternMatches(t *testing.T) {
	tests := []struct {
		pattern, dnis string
		want          bool
	}{
		{"5551000", "5551000", true},
		{"5551000", "55510001", false},
		{"300-400", "300", true},
		{"300-400", "400", true},
		{"300-400", "350", true},
		{"300-400", "299", false},
		{"300-400", "401", false},
		{"300-400", "0350", false},
		{"300-400", "3500", false},
		{"0100-0199", "0150", true},
		{"0100-0199", "150", false},
		{"45*", "45", true},
		{"45*", "4512", true},
		{"45*", "4", false},
		{"45*", "5451", false},
		{"*", "", true},
		{"*", "anything", true},
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Matches(tt.dnis); got != tt.want {
			t.Errorf("%q.Matches(%q) = %v, want %v", tt.pattern, tt.dnis, got, tt.want)
		}
	}
}

func baseObjects() []Object {
	return []Object{
		&Tenant{Name: RootTenant},
		&Tenant{Name: "t100", ID: "80dd"},
		&Pool{Name: "P"},
		&IVRProfile{Name: "a", Tenant: "t100", InitialPage: "http://x/a.vxml"},
		&IVRProfile{Name: "b", Tenant: "t100", InitialPage: "http://x/b.vxml"},
		&IVRProfile{Name: "c", Tenant: "t100", InitialPage: "http://x/c.vxml"},
		&IVRProfile{Name: "d", Tenant: "t100", InitialPage: "http://x/d.vxml"},
	}
}

func TestLookupDIDPrecedence(t *testing.T) {
	objs := append(baseObjects(),
		&DID{Tenant: "t100", Pattern: "5551000", Profile: "a"},
		&DID{Tenant: "t100", Pattern: "5550000-5559999", Profile: "b"},
		&DID{Tenant: "t100", Pattern: "555*", Profile: "c"},
		&DID{Tenant: "t100", Pattern: "5*", Profile: "d"},
		&DID{Tenant: RootTenant, Pattern: "*", Profile: "root"},
		&IVRProfile{Name: "root", InitialPage: "http://x/r.vxml"},
	)
	s, err := NewSnapshot(1, objs)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tenant, dnis, want string
	}{
		{"t100", "5551000", "a"},     // exact beats range and prefixes
		{"t100", "5551001", "b"},     // range beats prefixes
		{"t100", "55510001", "c"},    // longest prefix (range has another length)
		{"t100", "5600", "d"},        // shorter prefix
		{"t100", "6000", ""},         // nothing, the root's DIDs are not inherited
		{RootTenant, "6000", "root"}, // catch-all
		{"", "6000", "root"},         // empty tenant means the root
		{"unknown", "5551000", ""},   // unknown tenant
	}
	for _, tt := range tests {
		d, ok := s.LookupDID(tt.tenant, tt.dnis)
		got := ""
		if ok {
			got = d.Profile
		}
		if got != tt.want {
			t.Errorf("LookupDID(%q, %q) = %q, want %q", tt.tenant, tt.dnis, got, tt.want)
		}
	}
}

func TestDIDOverlap(t *testing.T) {
	tests := []struct {
		patterns []string
		wantErr  bool
	}{
		{[]string{"300-400", "401-500"}, false},
		{[]string{"300-400", "400-500"}, true},
		{[]string{"300-400", "350-360"}, true},
		{[]string{"100-900", "200-300", "400-500"}, true},
		{[]string{"300-400", "0300-0400"}, false}, // different lengths never overlap
		{[]string{"300-400", "350"}, false},       // exact inside a range is allowed and wins
		{[]string{"45*", "4*"}, false},            // nested prefixes: the longest wins
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.patterns), func(t *testing.T) {
			objs := baseObjects()
			for _, p := range tt.patterns {
				objs = append(objs, &DID{Tenant: "t100", Pattern: p, Profile: "a"})
			}
			err := Validate(objs)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				l, _ := AsErrorList(err)
				if l[0].Kind != KindDID || l[0].Field != "pattern" {
					t.Fatalf("error %+v does not name the DID pattern", l[0])
				}
			}
		})
	}
}

// TestLookupMatchesLinearScan checks the index against a linear scan with the documented
// precedence, over generated DIDs.
func TestLookupMatchesLinearScan(t *testing.T) {
	objs := baseObjects()
	var dids []*DID
	for i := 0; i < 300; i++ {
		var p string
		switch i % 3 {
		case 0:
			p = strconv.Itoa(1000 + i*7)
		case 1:
			p = fmt.Sprintf("%d-%d", 20000+i*10, 20000+i*10+5)
		case 2:
			p = strconv.Itoa(i) + "*"
		}
		d := &DID{Tenant: "t100", Pattern: p, Profile: "a"}
		dids = append(dids, d)
		objs = append(objs, d)
	}
	s, err := NewSnapshot(1, objs)
	if err != nil {
		t.Fatal(err)
	}
	linear := func(dnis string) *DID {
		var best *DID
		bestRank, bestLen := 0, -1
		for _, d := range dids {
			p, _ := ParsePattern(d.Pattern)
			if !p.Matches(dnis) {
				continue
			}
			rank := 3 - int(p.Type) // exact 2, range 1, prefix 0
			if rank > bestRank || (rank == bestRank && len(p.Digits) > bestLen) || best == nil {
				best, bestRank, bestLen = d, rank, len(p.Digits)
			}
		}
		return best
	}
	for n := 0; n < 40000; n += 3 {
		dnis := strconv.Itoa(n)
		got, _ := s.LookupDID("t100", dnis)
		want := linear(dnis)
		if got != want {
			t.Fatalf("LookupDID(%q) = %v, linear scan = %v", dnis, got, want)
		}
	}
}

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"5551000", "300-400", "45*", "*", "+1*", "0100-0199", "-", "9-", "99999999999999999-99999999999999999"} {
		f.Add(s, "350")
	}
	f.Fuzz(func(t *testing.T, pattern, dnis string) {
		p, err := ParsePattern(pattern)
		if err != nil {
			return
		}
		// Matching never panics and agrees with the index.
		m := p.Matches(dnis)
		x := newDIDIndex()
		d := &DID{Pattern: pattern}
		x.add(d, p)
		if len(x.finish()) != 0 {
			t.Fatal("a single pattern overlaps itself")
		}
		if got := x.lookup(dnis) == d; got != m {
			t.Fatalf("pattern %q dnis %q: index %v, Matches %v", pattern, dnis, got, m)
		}
		if p.Type == PatternRange && p.Lo > p.Hi {
			t.Fatalf("range %q parsed with lo > hi", pattern)
		}
	})
}

// bigConfig returns a configuration with n DIDs spread over 10 tenants: 80% exact numbers,
// 10% ranges of 100 numbers, 10% prefixes.
func bigConfig(n int) []Object {
	objs := []Object{&Tenant{Name: RootTenant}, &Pool{Name: "P"}}
	for t := 0; t < 10; t++ {
		tn := fmt.Sprintf("t%d", t)
		objs = append(objs, &Tenant{Name: tn, ID: fmt.Sprintf("id%d", t)},
			&IVRProfile{Name: "app", Tenant: tn, InitialPage: "http://127.0.0.1/app.vxml"})
	}
	for i := 0; i < n; i++ {
		tn := fmt.Sprintf("t%d", i%10)
		var p string
		switch {
		case i%10 < 8:
			p = strconv.Itoa(5550000000 + i)
		case i%10 == 8:
			p = fmt.Sprintf("%d-%d", 7000000000+i*100, 7000000000+i*100+99)
		default:
			p = strconv.Itoa(800000+i) + "*"
		}
		objs = append(objs, &DID{Tenant: tn, Pattern: p, Profile: "app"})
	}
	return objs
}

func BenchmarkLookupDID100k(b *testing.B) {
	s, err := NewSnapshot(1, bigConfig(100_000))
	if err != nil {
		b.Fatal(err)
	}
	queries := []struct{ tenant, dnis string }{
		{"t3", "5550050003"},  // exact
		{"t8", "7000500850"},  // range
		{"t9", "80500912345"}, // prefix
		{"t1", "1234567"},     // miss
	}
	for _, q := range queries {
		if _, ok := s.LookupDID(q.tenant, q.dnis); !ok && q.dnis != "1234567" {
			b.Fatalf("no DID for %v", q)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := queries[i%len(queries)]
		s.LookupDID(q.tenant, q.dnis)
	}
}

func BenchmarkSnapshotLoad100k(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		objs := bigConfig(100_000)
		b.StartTimer()
		if _, err := NewSnapshot(1, objs); err != nil {
			b.Fatal(err)
		}
	}
}
