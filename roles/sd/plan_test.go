package sd

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/confmodel"
	"github.com/opengvp/gvp/internal/discovery"
)

func instance(id string, port int, meta map[string]string) discovery.Instance {
	return discovery.Instance{ID: id, Service: discovery.ServiceMCP, Address: "10.0.0.1", Port: port, Meta: meta}
}

func managed(name, pool, addr string) *confmodel.MCP {
	return &confmodel.MCP{Name: name, Pool: pool, Address: addr, Transport: "udp", Capacity: 100, Managed: true}
}

func names(ms []*confmodel.MCP) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestMemberFor(t *testing.T) {
	m := MemberFor("P", instance("mcp-0@10.0.0.1:5070", 5070, map[string]string{
		discovery.MetaCapacity: "500", discovery.MetaTransport: "tcp", discovery.MetaVersion: "1.0"}))
	want := &confmodel.MCP{Name: "mcp-0@10.0.0.1:5070", Pool: "P", Address: "10.0.0.1:5070", Transport: "tcp",
		Capacity: 500, Managed: true, Labels: map[string]string{LabelVersion: "1.0"}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v\nwant %+v", m, want)
	}
	// Missing or bad meta gives the defaults; odd ids become valid names; IPv6 is bracketed.
	in := instance("a b", 5070, map[string]string{discovery.MetaCapacity: "-3", discovery.MetaTransport: "sctp"})
	in.Address = "::1"
	m = MemberFor("P", in)
	if m.Name != "a-b" || m.Capacity != confmodel.DefaultMCPCapacity || m.Transport != confmodel.TransportUDP || m.Address != "[::1]:5070" {
		t.Fatalf("defaults: %+v", m)
	}
}

func TestPlan(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	a := instance("a", 5070, nil)
	b := instance("b", 5071, map[string]string{discovery.MetaCapacity: "50"})
	cases := []struct {
		name        string
		in          planInput
		put         []string
		added       int
		del         []string
		missing     []string
		nextRemoval time.Time
		conflicts   []string
	}{
		{name: "empty pool gets both", in: planInput{Instances: []discovery.Instance{a, b}},
			put: []string{"a", "b"}, added: 2},
		{name: "unchanged members write nothing",
			in:  planInput{Instances: []discovery.Instance{a}, Current: []*confmodel.MCP{managed("a", "P", "10.0.0.1:5070")}},
			put: []string{}},
		{name: "changed capacity is an update",
			in:  planInput{Instances: []discovery.Instance{b}, Current: []*confmodel.MCP{managed("b", "P", "10.0.0.1:5071")}},
			put: []string{"b"}},
		{name: "member of another pool moves here",
			in:  planInput{Instances: []discovery.Instance{a}, Current: []*confmodel.MCP{managed("a", "Q", "10.0.0.1:5070")}},
			put: []string{"a"}},
		{name: "gone member removed at once without purge delay",
			in:  planInput{Current: []*confmodel.MCP{managed("a", "P", "10.0.0.1:5070")}},
			put: []string{}, del: []string{"a"}},
		{name: "purge delay keeps a gone member",
			in:  planInput{Current: []*confmodel.MCP{managed("a", "P", "x:1")}, PurgeDelay: time.Minute},
			put: []string{}, missing: []string{"a"}, nextRemoval: t0.Add(time.Minute)},
		{name: "purge delay elapsed",
			in: planInput{Current: []*confmodel.MCP{managed("a", "P", "x:1")}, PurgeDelay: time.Minute,
				Missing: map[string]time.Time{"a": t0.Add(-time.Minute)}},
			put: []string{}, del: []string{"a"}},
		{name: "flapping member back before the delay is kept and forgotten",
			in: planInput{Instances: []discovery.Instance{a}, Current: []*confmodel.MCP{managed("a", "P", "10.0.0.1:5070")},
				PurgeDelay: time.Minute, Missing: map[string]time.Time{"a": t0.Add(-30 * time.Second)}},
			put: []string{}},
		{name: "recovery hold withholds removals",
			in:  planInput{Current: []*confmodel.MCP{managed("a", "P", "x:1")}, HoldUntil: t0.Add(10 * time.Second)},
			put: []string{}, missing: []string{"a"}, nextRemoval: t0.Add(10 * time.Second)},
		{name: "hand-written members are left alone and win name conflicts",
			in: planInput{Instances: []discovery.Instance{a}, Current: []*confmodel.MCP{
				{Name: "a", Pool: "P", Address: "1.1.1.1:5060"}, {Name: "manual", Pool: "P", Address: "1.1.1.1:5061"}}},
			put: []string{}, conflicts: []string{"a"}},
		{name: "excluded names are never touched",
			in: planInput{Instances: []discovery.Instance{a, b}, Exclude: map[string]bool{"a": true, "old": true},
				Current: []*confmodel.MCP{managed("old", "P", "x:1")}},
			put: []string{"b"}, added: 1},
		{name: "managed members of other pools are left alone",
			in:  planInput{Current: []*confmodel.MCP{managed("z", "Q", "x:1")}},
			put: []string{}},
		{name: "duplicate instance names count once",
			in:  planInput{Instances: []discovery.Instance{a, a}},
			put: []string{"a"}, added: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.in.Pool, c.in.Now = "P", t0
			out := plan(c.in)
			if got := names(out.Put); !reflect.DeepEqual(got, c.put) {
				t.Errorf("put %v, want %v", got, c.put)
			}
			if out.Added != c.added {
				t.Errorf("added %d, want %d", out.Added, c.added)
			}
			if !reflect.DeepEqual(out.Delete, c.del) {
				t.Errorf("delete %v, want %v", out.Delete, c.del)
			}
			var missing []string
			for n := range out.Missing {
				missing = append(missing, n)
			}
			if !reflect.DeepEqual(missing, c.missing) {
				t.Errorf("missing %v, want %v", missing, c.missing)
			}
			if !out.NextRemoval.Equal(c.nextRemoval) {
				t.Errorf("next removal %v, want %v", out.NextRemoval, c.nextRemoval)
			}
			if !reflect.DeepEqual(out.Conflicts, c.conflicts) {
				t.Errorf("conflicts %v, want %v", out.Conflicts, c.conflicts)
			}
		})
	}
}

// TestPlanFlappingSequence replays a member going critical and back several times within the
// purge delay, then staying away: it is removed exactly once, a full delay after it last left.
func TestPlanFlappingSequence(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	a := instance("a", 5070, nil)
	current := []*confmodel.MCP{managed("a", "P", "10.0.0.1:5070")}
	missing := map[string]time.Time{}
	steps := []struct {
		at      time.Duration
		passing bool
		removed bool
	}{
		{0, true, false}, {5 * time.Second, false, false}, {15 * time.Second, true, false},
		{20 * time.Second, false, false}, {29 * time.Second, false, false}, {30 * time.Second, true, false},
		{40 * time.Second, false, false}, {49 * time.Second, false, false}, {50 * time.Second, false, true},
	}
	removals := 0
	for _, s := range steps {
		in := planInput{Pool: "P", Current: current, Missing: missing, Now: t0.Add(s.at), PurgeDelay: 10 * time.Second}
		if s.passing {
			in.Instances = []discovery.Instance{a}
		}
		out := plan(in)
		missing = out.Missing
		if got := len(out.Delete) == 1; got != s.removed {
			t.Fatalf("at %v: removed=%v, want %v", s.at, got, s.removed)
		}
		if len(out.Delete) == 1 {
			removals++
			current = nil
		}
	}
	if removals != 1 {
		t.Fatalf("removed %d times", removals)
	}
}

// BenchmarkPlan1000 diffs 1,000 registered instances against a pool holding them all (the
// steady state of every sync pass).
func BenchmarkPlan1000(b *testing.B) {
	var ins []discovery.Instance
	var cur []*confmodel.MCP
	for i := 0; i < 1000; i++ {
		in := instance("mcp-"+strconv.Itoa(i), 5070+i, map[string]string{discovery.MetaCapacity: "500"})
		ins = append(ins, in)
		cur = append(cur, MemberFor("P", in))
	}
	in := planInput{Pool: "P", Instances: ins, Current: cur, Now: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if out := plan(in); len(out.Put)+len(out.Delete) != 0 {
			b.Fatal("steady state wrote something")
		}
	}
}
