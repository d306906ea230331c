package sd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/opengvp/gvp/internal/confclient"
	"github.com/opengvp/gvp/internal/confmodel"
	"github.com/opengvp/gvp/internal/discovery"
	"github.com/opengvp/gvp/internal/testenv"
)

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestParseInventoryEntry(t *testing.T) {
	e, err := ParseInventoryEntry([]byte(`{"name":"t100","id":"80dd","gws-ccid":"cc-1","default-application":"IVRAppDefault"}`))
	if err != nil || e != (InventoryEntry{Name: "t100", ID: "80dd", CCID: "cc-1", DefaultApplication: "IVRAppDefault"}) {
		t.Fatalf("%+v %v", e, err)
	}
	e, err = ParseInventoryEntry([]byte(`{"name":"t1","id":"1"}`))
	if err != nil || e.DefaultApplication != DefaultApplication {
		t.Fatalf("default application: %+v %v", e, err)
	}
	for _, bad := range []string{
		``, `[]`, `{"name":"t1"}`, `{"id":"1"}`, `{"name":"t 1","id":"1"}`, `{"name":"t1","id":"a/b"}`,
		`{"name":"Environment","id":"1"}`, `{"name":"t1","id":"1","defaultApplication":"x"}`,
		`{"name":"t1","id":"1"}{"name":"t2","id":"2"}`, `{"name":"t1","id":"1","default-application":"a b"}`,
		`{"name":"` + strings.Repeat("x", 129) + `","id":"1"}`,
	} {
		if _, err := ParseInventoryEntry([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseInventoryEntry(f *testing.F) {
	f.Add([]byte(`{"name":"t100","id":"80dd","gws-ccid":"x","default-application":"IVRAppDefault"}`))
	f.Add([]byte(`{"name":"t1","id":"1"}`))
	f.Add([]byte(`{"name":"","id":"\u0000"}`))
	tm, err := ParseTemplates("", DefaultInitialPage)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseInventoryEntry(b)
		if err != nil {
			return
		}
		if !validObjectName(e.Name) || !validObjectName(e.ID) || !validObjectName(e.DefaultApplication) {
			t.Fatalf("accepted invalid names: %+v", e)
		}
		// Every accepted entry renders to profiles of its tenant.
		ps, err := tm.Render(e)
		if err != nil {
			t.Fatalf("render %+v: %v", e, err)
		}
		for _, p := range ps {
			if p.Tenant != e.Name {
				t.Fatalf("profile %s in tenant %s", p.Name, p.Tenant)
			}
		}
	})
}

func TestTemplates(t *testing.T) {
	tm, err := ParseTemplates("", "http://web/{{.ID}}/start.vxml")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := tm.Render(InventoryEntry{Name: "t100", ID: "80dd"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]confmodel.Service{"IVRAppDefault": "voicexml", "conference": "conference", "cpd": "cpd", "record": "record", "media": "media"}
	if len(ps) != len(want) {
		t.Fatalf("%d profiles", len(ps))
	}
	for _, p := range ps {
		if want[p.Name] != p.Service || p.Tenant != "t100" {
			t.Errorf("profile %+v", p)
		}
		if p.Name == "IVRAppDefault" && p.InitialPage != "http://web/80dd/start.vxml" {
			t.Errorf("initial page %q", p.InitialPage)
		}
	}
	for name, c := range map[string][2]string{
		"bad syntax":     {"kind: IVRProfile\nname: {{.Nope", ""},
		"unknown field":  {"kind: IVRProfile\nname: x\n{{.Missing}}", ""},
		"not a profile":  {"kind: Pool\nname: p", ""},
		"bad document":   {"kind: IVRProfile\nname: x\nservice: fax", ""},
		"bad page field": {"", "{{.Nope}}"},
	} {
		page := c[1]
		if page == "" {
			page = DefaultInitialPage
		}
		if _, err := ParseTemplates(c[0], page); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestInventoryProvisioning(t *testing.T) {
	ctx := context.Background()
	cs := newConfServer(t)
	reg := discovery.NewMemory()
	dir := t.TempDir()
	writeFile(t, dir, "t100.json", `{"name":"t100","id":"80dd","gws-ccid":"cc-100","default-application":"IVRAppDefault"}`)
	writeFile(t, dir, "t200.json", `{"name":"t200","id":"90ee"}`)
	writeFile(t, dir, "broken.json", `{"name":"t300",`)
	writeFile(t, dir, "zdup.json", `{"name":"t400","id":"80dd"}`) // id taken by t100: configsrv refuses it
	writeFile(t, dir, "notes.txt", `not an inventory file`)
	cfg := testConfig()
	cfg.InventoryDir = dir
	s := startSD(t, cfg, reg, cs.URL)

	testenv.Eventually(t, 10*time.Second, "two tenants provisioned", func() bool {
		return testutil.ToFloat64(s.m.provisioned) == 2 && testutil.ToFloat64(s.m.invalidFiles) == 2
	})
	for _, tn := range []struct{ name, id string }{{"t100", "80dd"}, {"t200", "90ee"}} {
		tenant, err := confclient.GetAs[*confmodel.Tenant](ctx, cs.CC, tn.name)
		if err != nil || tenant.ID != tn.id || tenant.DefaultApplication != "IVRAppDefault" {
			t.Fatalf("tenant %s: %+v %v", tn.name, tenant, err)
		}
		objs, _, err := cs.CC.List(ctx, confmodel.KindIVRProfile, confclient.ListFilter{Tenant: tn.name})
		if err != nil || len(objs) != 5 {
			t.Fatalf("profiles of %s: %d %v", tn.name, len(objs), err)
		}
		v, ok, _ := reg.KVGet(ctx, TenantKeyPrefix+tn.id)
		var rec TenantRecord
		if !ok || json.Unmarshal(v, &rec) != nil || rec.Name != tn.name || rec.Tenant != tn.name || len(rec.Profiles) != 5 {
			t.Fatalf("KV %s: %s", tn.id, v)
		}
	}
	if _, err := confclient.GetAs[*confmodel.Tenant](ctx, cs.CC, "t400"); err == nil {
		t.Fatal("tenant with a duplicate id was created")
	}
	if s.Ready() != nil {
		t.Fatalf("invalid files must not make sd unready: %v", s.Ready())
	}

	// Rescans of the same inventory change nothing, and the invalid files are reported once.
	rev := cs.revision(t)
	scans := s.inv.scans.Load()
	testenv.Eventually(t, 10*time.Second, "three more scans", func() bool { return s.inv.scans.Load() >= scans+3 })
	if testutil.ToFloat64(s.m.invalidFiles) != 2 || cs.revision(t) != rev {
		t.Fatal("rescans of an unchanged inventory did something")
	}

	// An operator's change to a profile survives; a changed entry updates the tenant and its KV.
	page := "http://operator/custom.vxml"
	if _, err := cs.CC.Put(ctx, &confmodel.IVRProfile{Name: "IVRAppDefault", Tenant: "t100", InitialPage: page}, false); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "t100.json", `{"name":"t100","id":"81dd","gws-ccid":"cc-100"}`)
	testenv.Eventually(t, 10*time.Second, "t100 re-provisioned", func() bool {
		_, ok, _ := reg.KVGet(ctx, TenantKeyPrefix+"81dd")
		return ok
	})
	if _, ok, _ := reg.KVGet(ctx, TenantKeyPrefix+"80dd"); ok {
		t.Fatal("the old id's KV entry is still there")
	}
	tenant, _ := confclient.GetAs[*confmodel.Tenant](ctx, cs.CC, "t100")
	p, _ := confclient.GetAs[*confmodel.IVRProfile](ctx, cs.CC, "t100/IVRAppDefault")
	if tenant.ID != "81dd" || p.InitialPage != page {
		t.Fatalf("tenant %+v, profile %+v", tenant, p)
	}
}

// TestInventoryIdempotentAcrossRestarts: a fresh sd over the same inventory writes nothing.
func TestInventoryIdempotentAcrossRestarts(t *testing.T) {
	cs := newConfServer(t)
	reg := discovery.NewMemory()
	dir := t.TempDir()
	writeFile(t, dir, "a.json", `{"name":"ta","id":"1"}`)
	writeFile(t, dir, "b.json", `{"name":"tb","id":"2"}`)
	cfg := testConfig()
	cfg.InventoryDir = dir
	first := startSD(t, cfg, reg, cs.URL)
	testenv.Eventually(t, 10*time.Second, "provisioned", func() bool { return testutil.ToFloat64(first.m.provisioned) == 2 })
	if err := first.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	rev := cs.revision(t)
	keys := reg.Keys()

	second := startSD(t, cfg, reg, cs.URL)
	testenv.Eventually(t, 10*time.Second, "scanned", func() bool {
		return testutil.ToFloat64(second.m.inventoryFiles) == 2 && second.inv.scans.Load() >= 2
	})
	if testutil.ToFloat64(second.m.provisioned) != 0 || cs.revision(t) != rev {
		t.Fatalf("second run changed things: provisioned %v, revision %d -> %d",
			testutil.ToFloat64(second.m.provisioned), rev, cs.revision(t))
	}
	after := reg.Keys()
	for k, v := range keys {
		if string(after[k]) != string(v) {
			t.Fatalf("KV %s changed", k)
		}
	}
}

// TestInventoryUnavailable: with configsrv down nothing is marked done, sd is not ready, and
// provisioning happens once configsrv is back.
func TestInventoryUnavailable(t *testing.T) {
	cs := newConfServer(t)
	cs.Down.Store(true)
	reg := discovery.NewMemory()
	dir := t.TempDir()
	writeFile(t, dir, "a.json", `{"name":"ta","id":"1"}`)
	cfg := testConfig()
	cfg.InventoryDir = dir
	s := startSD(t, cfg, reg, cs.URL)
	testenv.Eventually(t, 10*time.Second, "inventory not ready", func() bool {
		err := s.Ready()
		return err != nil && strings.Contains(err.Error(), "inventory")
	})
	cs.Down.Store(false)
	testenv.Eventually(t, 10*time.Second, "provisioned", func() bool { return testutil.ToFloat64(s.m.provisioned) == 1 })
	if testutil.ToFloat64(s.m.invalidFiles) != 0 {
		t.Fatal("an unavailable configsrv marked the file invalid")
	}
}
