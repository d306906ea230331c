package rm

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

const routingDocs = `
kind: Tenant
name: Environment
defaultApplication: rootDefault
---
kind: IVRProfile
name: rootDefault
initialPage: http://h/root.vxml
---
kind: Tenant
name: t100
id: 80dd
defaultApplication: IVRAppDefault
---
kind: Tenant
name: t200
id: 90ee
---
kind: IVRProfile
name: IVRAppDefault
tenant: t100
initialPage: http://h/default.vxml
---
kind: IVRProfile
name: billing
tenant: t100
id: prof-billing
initialPage: http://h/billing.vxml
---
kind: IVRProfile
name: sales
tenant: t100
initialPage: http://h/sales.vxml
---
kind: IVRProfile
name: direct
initialPage: http://h/direct.vxml
---
kind: DID
tenant: t100
pattern: "5551000"
profile: billing
---
kind: DID
tenant: t100
pattern: "300-400"
profile: sales
---
kind: DID
tenant: t100
pattern: "45*"
profile: sales
`

func TestSelectProfile(t *testing.T) {
	snap, err := SnapshotFromDocuments(1, []byte(routingDocs))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, ruri, header, want, tenant, by string
	}{
		{"did exact", "sip:5551000@rm;gvp-tenant-id=80dd", "", "t100/billing", "t100", byDID},
		{"did range", "sip:350@rm;gvp-tenant-id=80dd", "", "t100/sales", "t100", byDID},
		{"did prefix", "sip:4599@rm;gvp-tenant-id=80dd", "", "t100/sales", "t100", byDID},
		{"tenant default", "sip:999@rm;gvp-tenant-id=80dd", "", "t100/IVRAppDefault", "t100", byTenantDflt},
		{"tenant by name", "sip:999@rm;gvp-tenant-id=t100", "", "t100/IVRAppDefault", "t100", byTenantDflt},
		{"tenant inherits root default", "sip:999@rm;gvp-tenant-id=90ee", "", "Environment/rootDefault", "t200", byTenantDflt},
		{"no tenant: root default", "sip:999@rm", "", "Environment/rootDefault", "Environment", byRootDefault},
		{"param names a profile", "sip:999@rm;gvp-tenant-id=direct", "", "Environment/direct", "Environment", byURIParam},
		{"header id", "sip:5551000@rm;gvp-tenant-id=80dd", HeaderProfileID + ": prof-billing", "t100/billing", "t100", byHeaderID},
		{"header name", "sip:1@rm;gvp-tenant-id=80dd", HeaderProfileName + ": sales", "t100/sales", "t100", byHeaderName},
		{"unknown header falls through", "sip:5551000@rm;gvp-tenant-id=80dd", HeaderProfileName + ": nope", "t100/billing", "t100", byDID},
		{"unknown tenant", "sip:1@rm;gvp-tenant-id=zzz", "", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var u sip.Uri
			if err := sip.ParseUri(c.ruri, &u); err != nil {
				t.Fatal(err)
			}
			req := sip.NewRequest(sip.INVITE, u)
			if c.header != "" {
				n, v, _ := strings.Cut(c.header, ": ")
				req.AppendHeader(sip.NewHeader(n, v))
			}
			sel, ok := selectProfile(snap, req)
			if c.want == "" {
				if ok {
					t.Fatalf("selected %s, want a rejection", sel.profile.Key())
				}
				return
			}
			if !ok {
				t.Fatal("no profile selected")
			}
			if sel.profile.Key() != c.want || sel.tenant.Name != c.tenant || sel.by != c.by {
				t.Fatalf("got %s tenant %s by %s; want %s tenant %s by %s", sel.profile.Key(), sel.tenant.Name, sel.by, c.want, c.tenant, c.by)
			}
		})
	}
}

func TestRootWithoutDefaultRejects(t *testing.T) {
	snap, err := SnapshotFromDocuments(1, []byte("kind: Tenant\nname: t1\nid: x1\n"))
	if err != nil {
		t.Fatal(err)
	}
	var u sip.Uri
	_ = sip.ParseUri("sip:1@rm;gvp-tenant-id=x1", &u)
	if _, ok := selectProfile(snap, sip.NewRequest(sip.INVITE, u)); ok {
		t.Fatal("selected a profile with no default anywhere")
	}
}

func TestMCPURI(t *testing.T) {
	snap, err := SnapshotFromDocuments(1, []byte(`
kind: IVRProfile
name: v
initialPage: http://h:8000/a.vxml?x=1&y=2
parameters: {b: "2", a: "x y"}
---
kind: IVRProfile
name: ann
service: announcement
parameters: {play: "http://h/hello.wav", repeat: "2"}
---
kind: IVRProfile
name: conf
service: conference
---
kind: IVRProfile
name: rec
service: record
`))
	if err != nil {
		t.Fatal(err)
	}
	get := func(n string) string {
		p, _ := snap.Profile("", n)
		u := mcpURI(p, "10.0.0.1", 5070, "udp", "5551000")
		return u.String()
	}
	for name, want := range map[string]string{
		"v":    "sip:dialog@10.0.0.1:5070;voicexml=http://h:8000/a.vxml%3Fx%3D1&y%3D2;a=x%20y;b=2",
		"ann":  "sip:annc@10.0.0.1:5070;play=http://h/hello.wav;repeat=2",
		"conf": "sip:conf=5551000@10.0.0.1:5070",
		"rec":  "sip:record@10.0.0.1:5070",
	} {
		if got := get(name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}

func BenchmarkSelectProfile(b *testing.B) {
	snap, err := SnapshotFromDocuments(1, []byte(routingDocs))
	if err != nil {
		b.Fatal(err)
	}
	var u sip.Uri
	_ = sip.ParseUri("sip:350@rm;gvp-tenant-id=80dd", &u)
	req := sip.NewRequest(sip.INVITE, u)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := selectProfile(snap, req); !ok {
			b.Fatal("no profile")
		}
	}
}
