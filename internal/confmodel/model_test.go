package confmodel

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestParseResponse(t *testing.T) {
	tests := []struct {
		in   string
		want Response
		ok   bool
	}{
		{"403", Response{403, ""}, true},
		{"480;Temporarily Unavailable", Response{480, "Temporarily Unavailable"}, true},
		{" 486 ; Busy Here ", Response{486, "Busy Here"}, true},
		{"699", Response{699, ""}, true},
		{"399", Response{}, false},
		{"700", Response{}, false},
		{"200", Response{}, false},
		{"4O3", Response{}, false},
		{"403;", Response{}, false},
		{"403;bad\r\nInjected: x", Response{}, false},
		{"", Response{}, false},
		{"4030", Response{}, false},
	}
	for _, tt := range tests {
		got, err := ParseResponse(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseResponse(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if s := (Response{480, "Busy"}).String(); s != "480;Busy" {
		t.Errorf("String = %q", s)
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name  string
		objs  []Object
		kind  Kind
		key   string
		field string
		msg   string
	}{
		{"unknown parent", []Object{&Tenant{Name: RootTenant}, &Tenant{Name: "a", Parent: "nope"}},
			KindTenant, "a", "parent", `unknown tenant "nope"`},
		{"cycle", []Object{&Tenant{Name: RootTenant}, &Tenant{Name: "a", Parent: "b"}, &Tenant{Name: "b", Parent: "a"}},
			KindTenant, "a", "parent", "cycle"},
		{"self parent", []Object{&Tenant{Name: RootTenant}, &Tenant{Name: "a", Parent: "a"}},
			KindTenant, "a", "parent", "own parent"},
		{"root with parent", []Object{&Tenant{Name: RootTenant, Parent: "x"}, &Tenant{Name: "x"}},
			KindTenant, RootTenant, "parent", "no parent"},
		{"missing root", []Object{&Pool{Name: "P"}}, KindTenant, RootTenant, "", "required"},
		{"duplicate tenant id", []Object{&Tenant{Name: RootTenant}, &Tenant{Name: "a", ID: "1"}, &Tenant{Name: "b", ID: "1"}},
			KindTenant, "b", "id", "already used"},
		{"unknown default app", []Object{&Tenant{Name: RootTenant, DefaultApplication: "x"}},
			KindTenant, RootTenant, "defaultApplication", `unknown profile "x"`},
		{"profile unknown tenant", []Object{&Tenant{Name: RootTenant}, &IVRProfile{Name: "p", Tenant: "zz", InitialPage: "http://h/"}},
			KindIVRProfile, "zz/p", "tenant", `unknown tenant "zz"`},
		{"profile unknown pool", []Object{&Tenant{Name: RootTenant}, &IVRProfile{Name: "p", Pool: "nope", InitialPage: "http://h/"}},
			KindIVRProfile, "Environment/p", "pool", `unknown pool "nope"`},
		{"profile bad service", []Object{&Tenant{Name: RootTenant}, &IVRProfile{Name: "p", Service: "fax"}},
			KindIVRProfile, "Environment/p", "service", "unknown service"},
		{"profile voicexml without page", []Object{&Tenant{Name: RootTenant}, &IVRProfile{Name: "p"}},
			KindIVRProfile, "Environment/p", "initialPage", "required"},
		{"bad forbidden response", []Object{&Tenant{Name: RootTenant}, &IVRProfile{Name: "p", InitialPage: "http://h/", Policy: &Policy{ForbiddenResponse: "200;OK"}}},
			KindIVRProfile, "Environment/p", "policy.forbiddenResponse", "400 to 699"},
		{"bad usage response", []Object{&Tenant{Name: "Environment", Policy: &Policy{UsageLimitExceededResponse: "abc"}}},
			KindTenant, RootTenant, "policy.usageLimitExceededResponse", "invalid response"},
		{"maxInboundCalls on profile", []Object{&Tenant{Name: RootTenant}, &IVRProfile{Name: "p", InitialPage: "http://h/", Policy: &Policy{MaxInboundCalls: ptr(3)}}},
			KindIVRProfile, "Environment/p", "policy.maxInboundCalls", "tenants only"},
		{"negative limit", []Object{&Tenant{Name: RootTenant, Policy: &Policy{UsageLimit: ptr(-1)}}},
			KindTenant, RootTenant, "policy.usageLimit", "0 or more"},
		{"did unknown profile", []Object{&Tenant{Name: RootTenant}, &DID{Pattern: "1", Profile: "x"}},
			KindDID, "Environment/1", "profile", `unknown profile "x"`},
		{"did bad pattern", []Object{&Tenant{Name: RootTenant}, &DID{Pattern: "1x", Profile: "x"}},
			KindDID, "Environment/1x", "pattern", "invalid DID pattern"},
		{"mcp unknown pool", []Object{&Tenant{Name: RootTenant}, &MCP{Name: "m", Pool: "P", Address: "127.0.0.1:5070"}},
			KindMCP, "m", "pool", `unknown pool "P"`},
		{"mcp bad address", []Object{&Tenant{Name: RootTenant}, &Pool{Name: "P"}, &MCP{Name: "m", Pool: "P", Address: "127.0.0.1"}},
			KindMCP, "m", "address", "host:port"},
		{"mcp bad port", []Object{&Tenant{Name: RootTenant}, &Pool{Name: "P"}, &MCP{Name: "m", Pool: "P", Address: "127.0.0.1:70000"}},
			KindMCP, "m", "address", "port"},
		{"mcp bad transport", []Object{&Tenant{Name: RootTenant}, &Pool{Name: "P"}, &MCP{Name: "m", Pool: "P", Address: "h:1", Transport: "sctp"}},
			KindMCP, "m", "transport", "unknown transport"},
		{"pool bad scheme", []Object{&Tenant{Name: RootTenant}, &Pool{Name: "P", LoadBalance: "random"}},
			KindPool, "P", "loadBalance", "unknown scheme"},
		{"pool bad monitor", []Object{&Tenant{Name: RootTenant}, &Pool{Name: "P", Monitor: Monitor{Method: "ping"}}},
			KindPool, "P", "monitor.method", "unknown method"},
		{"bad name", []Object{&Tenant{Name: RootTenant}, &Pool{Name: "a b"}},
			KindPool, "a b", "name", "invalid name"},
		{"duplicate", []Object{&Tenant{Name: RootTenant}, &Pool{Name: "P"}, &Pool{Name: "P"}},
			KindPool, "P", "", "duplicate"},
		{"settings bad name", []Object{&Tenant{Name: RootTenant}, &Settings{Name: "/mcp"}},
			KindSettings, "/mcp", "name", "invalid name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.objs)
			if err == nil {
				t.Fatal("Validate accepted an invalid configuration")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			l, _ := AsErrorList(err)
			for _, e := range l {
				if e.Kind == tt.kind && e.Name == tt.key && e.Field == tt.field && strings.Contains(e.Message, tt.msg) {
					return
				}
			}
			t.Fatalf("no error for %s %q field %q containing %q in:\n%v", tt.kind, tt.key, tt.field, tt.msg, err)
		})
	}
}

func TestResolveAndDefaults(t *testing.T) {
	objs := []Object{
		&Tenant{Name: RootTenant, DefaultApplication: "rootapp"},
		&Tenant{Name: "a", ID: "A"},
		&Tenant{Name: "b", Parent: "a", ID: "B", DefaultApplication: "shared"},
		&IVRProfile{Name: "rootapp", InitialPage: "http://h/r.vxml"},
		&IVRProfile{Name: "shared", Tenant: "a", InitialPage: "http://h/s.vxml", ID: "42"},
		&IVRProfile{Name: "shared", Tenant: "b", InitialPage: "http://h/s2.vxml"},
		&Pool{Name: "Z", Services: []Service{ServiceConference}},
		&Pool{Name: "Y", Services: []Service{ServiceVoiceXML}},
		&MCP{Name: "m2", Pool: "Y", Address: "127.0.0.1:5072"},
		&MCP{Name: "m1", Pool: "Y", Address: "127.0.0.1:5071"},
	}
	s, err := NewSnapshot(7, objs)
	if err != nil {
		t.Fatal(err)
	}
	if s.Revision() != 7 {
		t.Fatalf("revision %d", s.Revision())
	}
	if p, _ := s.ResolveProfile("b", "shared"); p.Tenant != "b" {
		t.Errorf("b's own profile should win, got %s", p.Key())
	}
	if p, _ := s.ResolveProfile("a", "rootapp"); p.Tenant != RootTenant {
		t.Errorf("rootapp resolves from the root, got %s", p.Key())
	}
	if p, _ := s.DefaultProfile("a"); p == nil || p.Name != "rootapp" {
		t.Errorf("tenant a's default = %v, want the root's rootapp", p)
	}
	if p, _ := s.DefaultProfile("b"); p == nil || p.Key() != "b/shared" {
		t.Errorf("tenant b's default = %v", p)
	}
	if tn, _ := s.TenantByID("B"); tn == nil || tn.Name != "b" {
		t.Errorf("TenantByID(B) = %v", tn)
	}
	if p, _ := s.ProfileByID("42"); p == nil || p.Key() != "a/shared" {
		t.Errorf("ProfileByID(42) = %v", p)
	}
	if c := s.TenantChain("b"); len(c) != 3 || c[0].Name != RootTenant || c[2].Name != "b" {
		t.Errorf("chain %v", c)
	}
	p, _ := s.Profile("a", "shared")
	if pool, _ := s.PoolForProfile(p); pool == nil || pool.Name != "Y" {
		t.Errorf("pool for voicexml = %v, want Y", pool)
	}
	if m := s.Members("Y"); len(m) != 2 || m[0].Name != "m1" {
		t.Errorf("members %v", m)
	}
	if pool, _ := s.Pool("Y"); pool.Monitor.Interval.D() != DefaultMonitorInterval || pool.LoadBalance != LoadBalanceRoundRobin {
		t.Errorf("pool defaults not filled: %+v", pool)
	}
}

func TestEffectivePolicy(t *testing.T) {
	objs := []Object{
		&Tenant{Name: RootTenant, Policy: &Policy{UsageLimit: ptr(100), MaxInboundCalls: ptr(1000)}},
		&Tenant{Name: "parent", Policy: &Policy{UsageLimit: ptr(10), UsageLimitExceededResponse: "486;Parent Busy", MaxInboundCalls: ptr(5)}},
		&Tenant{Name: "child", Parent: "parent", Policy: &Policy{UsageLimit: ptr(50), MaxInboundCalls: ptr(20)}},
		&Tenant{Name: "closed", Parent: "parent", Policy: &Policy{Allowed: ptr(false), ForbiddenResponse: "503;Closed"}},
		&Tenant{Name: "under", Parent: "closed", Policy: &Policy{Allowed: ptr(false), ForbiddenResponse: "404"}},
		&Tenant{Name: "free"},
		&IVRProfile{Name: "small", Tenant: "child", InitialPage: "http://h/", Policy: &Policy{UsageLimit: ptr(2)}},
		&IVRProfile{Name: "big", Tenant: "child", InitialPage: "http://h/", Policy: &Policy{UsageLimit: ptr(500)}},
		&IVRProfile{Name: "p", Tenant: "under", InitialPage: "http://h/", Policy: &Policy{Allowed: ptr(true)}},
		&IVRProfile{Name: "off", Tenant: "free", InitialPage: "http://h/", Policy: &Policy{Allowed: ptr(false)}},
	}
	s, err := NewSnapshot(1, objs)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := s.TenantPolicy("child")
	if e.UsageLimit != 10 || e.UsageLimitExceededResponse.String() != "486;Parent Busy" || e.UsageLimitBy.Key != "parent" {
		t.Errorf("child: the parent's smaller limit wins, got %+v", e)
	}
	if e.MaxInboundCalls != 5 || !e.Allowed {
		t.Errorf("child maxInbound = %d allowed=%v", e.MaxInboundCalls, e.Allowed)
	}
	p, _ := s.Profile("child", "small")
	e, _ = s.ProfilePolicy(p)
	if e.UsageLimit != 2 || e.UsageLimitExceededResponse.String() != "480" {
		t.Errorf("small: own smaller limit with the default response, got %+v", e)
	}
	p, _ = s.Profile("child", "big")
	e, _ = s.ProfilePolicy(p)
	if e.UsageLimit != 10 {
		t.Errorf("big cannot raise the parent's limit, got %d", e.UsageLimit)
	}
	p, _ = s.Profile("under", "p")
	e, _ = s.ProfilePolicy(p)
	if e.Allowed || e.ForbiddenResponse.String() != "503;Closed" || e.ForbiddenBy.Key != "closed" {
		t.Errorf("forbidden by the topmost forbidding tenant, got %+v", e)
	}
	p, _ = s.Profile("free", "off")
	e, _ = s.ProfilePolicy(p)
	if e.Allowed || e.ForbiddenResponse.String() != "403" {
		t.Errorf("profile forbids with default 403, got %+v", e)
	}
	e, _ = s.TenantPolicy("free")
	if !e.Allowed || e.UsageLimit != 100 || e.MaxInboundCalls != 1000 {
		t.Errorf("free inherits the root's limits, got %+v", e)
	}
	if _, ok := s.TenantPolicy("nope"); ok {
		t.Error("unknown tenant has a policy")
	}
}

const specYAML = `kind: Tenant
name: t100
id: 80dd
defaultApplication: IVRAppDefault
---
kind: IVRProfile
name: billing
tenant: t100
service: voicexml
initialPage: http://127.0.0.1:8000/billing.vxml
policy: {usageLimit: 2}
---
kind: DID
tenant: t100
pattern: "5551000"
profile: billing
---
kind: Pool
name: MCP_LRG
loadBalance: round-robin
monitor: {method: options, interval: 5s, failures: 2}
---
kind: MCP
name: mcp-0
pool: MCP_LRG
address: 127.0.0.1:5070
capacity: 500
`

func TestDecodeSpecExample(t *testing.T) {
	docs, err := DecodeDocuments([]byte(specYAML))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 5 {
		t.Fatalf("got %d documents", len(docs))
	}
	tn := docs[0].Object.(*Tenant)
	if tn.ID != "80dd" || tn.Parent != RootTenant {
		t.Errorf("tenant %+v", tn)
	}
	p := docs[1].Object.(*IVRProfile)
	if *p.Policy.UsageLimit != 2 || p.Service != ServiceVoiceXML {
		t.Errorf("profile %+v", p)
	}
	pool := docs[3].Object.(*Pool)
	if pool.Monitor.Interval.D() != 5*time.Second || pool.Monitor.Failures != 2 {
		t.Errorf("pool %+v", pool)
	}
	if m := docs[4].Object.(*MCP); m.Capacity != 500 || m.Transport != TransportUDP {
		t.Errorf("mcp %+v", m)
	}
	// The same through JSON, and back through the encoders.
	var buf bytes.Buffer
	objs := make([]Object, len(docs))
	for i, d := range docs {
		objs[i] = d.Object
	}
	for _, f := range []Format{FormatJSON, FormatYAML} {
		buf.Reset()
		if err := EncodeDocuments(&buf, objs, f); err != nil {
			t.Fatal(err)
		}
		again, err := DecodeObjects(buf.Bytes())
		if err != nil {
			t.Fatalf("%s round trip: %v\n%s", f, err, buf.String())
		}
		if len(again) != len(objs) {
			t.Fatalf("%s round trip: %d objects", f, len(again))
		}
		for i := range objs {
			a, _ := MarshalDocumentJSON(objs[i])
			b, _ := MarshalDocumentJSON(again[i])
			if !bytes.Equal(a, b) {
				t.Errorf("%s round trip differs:\n%s\n%s", f, a, b)
			}
		}
	}
	// With the root, the documents form a valid configuration.
	if err := Validate(append([]Object{&Tenant{Name: RootTenant}, &IVRProfile{Name: "IVRAppDefault", InitialPage: "http://h/"}}, objs...)); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeUnquotedNumbers(t *testing.T) {
	objs, err := DecodeObjects([]byte("kind: DID\npattern: 5551000\nprofile: x\n---\nkind: Tenant\nname: t\nid: 8000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if objs[0].(*DID).Pattern != "5551000" || objs[1].(*Tenant).ID != "8000" {
		t.Fatalf("numbers not read as strings: %+v %+v", objs[0], objs[1])
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, in string
		doc      int
		kind     Kind
		key      string
		field    string
		msg      string
	}{
		{"unknown field yaml", "kind: Pool\nname: P\n---\nkind: MCP\nname: m\npool: P\naddress: h:1\ncapcity: 3\n", 1, KindMCP, "m", "capcity", "unknown field"},
		{"nested unknown field", "kind: Pool\nname: P\nmonitor: {method: options, intervl: 5s}\n", 0, KindPool, "P", "monitor.intervl", "unknown field"},
		{"type error yaml", "kind: Tenant\nname: t\n---\nkind: IVRProfile\nname: b\ntenant: t\npolicy:\n  usageLimit: lots\n", 1, KindIVRProfile, "t/b", "policy.usageLimit", "cannot unmarshal"},
		{"bad duration", "kind: Pool\nname: P\nmonitor:\n  interval: soon\n", 0, KindPool, "P", "monitor.interval", "invalid duration"},
		{"unknown kind", "kind: Trunk\nname: x\n", 0, "", "", "kind", "unknown kind"},
		{"missing kind", "name: x\n", 0, "", "", "kind", "required"},
		{"validation", "kind: Tenant\nname: t\n---\nkind: MCP\nname: m\npool: P\naddress: nowhere\n", 1, KindMCP, "m", "address", "host:port"},
		{"bad response", "kind: Tenant\nname: t\npolicy: {forbiddenResponse: '99'}\n", 0, KindTenant, "t", "policy.forbiddenResponse", "400 to 699"},
		{"json unknown field", `{"kind":"Pool","name":"P"} {"kind":"MCP","name":"m","pool":"P","adress":"h:1"}`, 1, KindMCP, "m", "adress", "unknown field"},
		{"json type error", `[{"kind":"Tenant","name":"t","policy":{"usageLimit":"x"}}]`, 0, KindTenant, "t", "policy.usageLimit", "want an integer"},
		{"json not object", `[1]`, 0, "", "", "", "JSON object"},
		{"yaml syntax", "kind: Tenant\nname: [\n", 0, "", "", "", "invalid YAML"},
		{"yaml not mapping", "- a\n- b\n", 0, "", "", "", "mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeDocuments([]byte(tt.in))
			l, ok := AsErrorList(err)
			if !ok {
				t.Fatalf("err = %v, want an ErrorList", err)
			}
			for _, e := range l {
				if e.Document == tt.doc && e.Kind == tt.kind && e.Name == tt.key && e.Field == tt.field && strings.Contains(e.Message, tt.msg) {
					return
				}
			}
			t.Fatalf("no error for doc %d %s %q field %q containing %q in %#v", tt.doc, tt.kind, tt.key, tt.field, tt.msg, l)
		})
	}
}

func TestDecodeObject(t *testing.T) {
	o, err := DecodeObject(KindPool, []byte(`{"name":"P","loadBalance":"least-percent-usage"}`))
	if err != nil {
		t.Fatal(err)
	}
	if o.(*Pool).LoadBalance != LoadBalanceLeastPercentUsage {
		t.Fatalf("%+v", o)
	}
	if _, err := DecodeObject(KindPool, []byte("name: P\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeObject(KindPool, []byte(`{"kind":"MCP","name":"m","pool":"P","address":"h:1"}`)); err == nil {
		t.Fatal("kind mismatch accepted")
	}
}

func TestDemoObjects(t *testing.T) {
	objs, err := DemoObjects(DemoConfig{InitialPage: "http://127.0.0.1:9/hello.vxml", MCPAddress: "127.0.0.1:15070"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSnapshot(1, objs)
	if err != nil {
		t.Fatal(err)
	}
	tn, ok := s.TenantByID(DemoTenantID)
	if !ok || tn.Name != DemoTenant {
		t.Fatal("demo tenant not found by id")
	}
	d, ok := s.LookupDID(DemoTenant, DemoDID)
	if !ok {
		t.Fatal("demo DID not found")
	}
	p, ok := s.DIDProfile(d)
	if !ok || p.InitialPage != "http://127.0.0.1:9/hello.vxml" || p.Service != ServiceVoiceXML {
		t.Fatalf("demo profile %+v", p)
	}
	pool, _ := s.PoolForProfile(p)
	if m := s.Members(pool.Name); len(m) != 1 || m[0].Address != "127.0.0.1:15070" {
		t.Fatalf("demo members %v", m)
	}
	if p, _ := s.DefaultProfile(RootTenant); p == nil || p.Name != DemoProfile {
		t.Fatal("root default application missing")
	}
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{"tenant": KindTenant, "Tenants": KindTenant, "profile": KindIVRProfile,
		"IVRProfile": KindIVRProfile, "did": KindDID, "pools": KindPool, "MCP": KindMCP, "settings": KindSettings} {
		if got, err := ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseKind("trunk"); err == nil {
		t.Error("unknown kind accepted")
	}
}

func FuzzDecodeDocuments(f *testing.F) {
	f.Add([]byte(specYAML))
	f.Add([]byte(`[{"kind":"Pool","name":"P","monitor":{"interval":3}}]`))
	f.Add([]byte("kind: Settings\nname: mcp/mcp-0\nvalues: {a: [1, 2], b: {c: d}}\n"))
	f.Add([]byte("kind: Pool\nname: &a P\nloadBalance: *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := DecodeDocuments(data)
		if err != nil {
			if _, ok := AsErrorList(err); !ok {
				t.Fatalf("error is not an ErrorList: %v", err)
			}
			return
		}
		// Every decoded object re-encodes and decodes to the same JSON.
		for _, d := range docs {
			if d.Object == nil {
				t.Fatal("nil object")
			}
			b, err := MarshalDocumentJSON(d.Object)
			if err != nil {
				t.Fatal(err)
			}
			again, err := DecodeObjects(b)
			if err != nil {
				t.Fatalf("re-decode of %s: %v", b, err)
			}
			b2, _ := MarshalDocumentJSON(again[0])
			if !bytes.Equal(b, b2) {
				t.Fatalf("unstable round trip:\n%s\n%s", b, b2)
			}
		}
	})
}

func TestEncodeEmptyYAML(t *testing.T) {
	var b strings.Builder
	if err := EncodeDocuments(&b, nil, FormatYAML); err != nil || b.Len() != 0 {
		t.Fatalf("empty YAML stream: %q, %v", b.String(), err)
	}
}
