package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/testenv"
)

// cluster is a multi-process deployment: each role a `gvp <role>` process, a private Consul.
type cluster struct {
	consul    *testenv.ConsulAgent
	configsrv *testenv.Process
	sd        *testenv.Process
	rm        *testenv.Process
	wav       string
}

func sets(kv ...string) []string {
	var out []string
	for _, s := range kv {
		out = append(out, "--set", s)
	}
	return out
}

func (c *cluster) common() []string {
	return sets("cluster.configsrv_url="+c.configsrv.Endpoints["configsrv"]["api"],
		"cluster.consul="+c.consul.Addr(),
		"cluster.broker=127.0.0.1:1", // no broker here: records wait in the spools
		"sd.registration.check_interval=1s", "sd.registration.check_timeout=500ms",
		"sd.registration.refresh=1s")
}

func (c *cluster) startMCP(t *testing.T, name string, rtpBase int) *testenv.Process {
	args := append([]string{"mcp"}, c.common()...)
	args = append(args, sets("mcp.name="+name, "mcp.sip.listen=127.0.0.1:0", "mcp.admin.listen=127.0.0.1:0",
		"mcp.rtp.port_min="+strconv.Itoa(rtpBase), "mcp.rtp.port_max="+strconv.Itoa(rtpBase+998),
		"mcp.vxml.allow_file=true", "mcp.vxml.tts_engine=none", "shutdown.drain_timeout=30s")...)
	return testenv.Start(t, args...)
}

// poolMembers lists the names of the pool's members in configsrv.
func (c *cluster) poolMembers(t *testing.T) []string {
	_, body := testenv.Get(t, c.configsrv.Endpoints["configsrv"]["api"]+"/api/v1/mcps")
	var names []string
	for _, m := range regexp.MustCompile(`"name":"([^"]+)"`).FindAllStringSubmatch(body, -1) {
		names = append(names, m[1])
	}
	return names
}

func (c *cluster) waitPool(t *testing.T, what string, want ...string) {
	testenv.Eventually(t, 20*time.Second, what, func() bool {
		got := c.poolMembers(t)
		if len(got) != len(want) {
			return false
		}
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || strings.HasPrefix(g, w+"@")
			}
			if !found {
				return false
			}
		}
		return true
	})
}

// callsPerMCP reads rm's per-member call counters.
func (c *cluster) callsPerMCP(t *testing.T) map[string]int {
	_, body := testenv.Get(t, c.rm.URL(t, "rm")+"/metrics")
	out := map[string]int{}
	re := regexp.MustCompile(`gvp_rm_resource_calls_total\{[^}]*resource="([^@"]+)@[^"]*"[^}]*\} (\d+)`)
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		n, _ := strconv.Atoi(m[2])
		out[m[1]] += n
	}
	return out
}

// call places one call through rm and reports its final code.
func (c *cluster) call(t *testing.T) (int, string) {
	r := placeCall(t, "sip:5551000@"+c.rm.Endpoints["rm"]["sip/udp"]+";gvp-tenant-id=80dd", "--hangup-after", "10s")
	code, _ := r["code"].(float64)
	by, _ := r["hung_up_by"].(string)
	return int(code), by
}

// TestClusterDiscoveryRouting runs the production shape on loopback — configsrv, sd, rm and
// mcps as separate processes with a real Consul — and checks: the mcps register and sd puts
// them in the pool, rm routes calls to both; a draining mcp leaves Consul and the pool while its
// call in progress continues and no call placed meanwhile fails; a killed mcp's check goes
// critical and it leaves the pool.
func TestClusterDiscoveryRouting(t *testing.T) {
	testenv.Service(t, "GVP_TEST_CONSUL", "scripts/consul.sh start")
	c := &cluster{consul: testenv.NewConsulAgent(t)}
	c.wav = filepath.Join(testenv.RepoRoot(), "roles", "mcp", "testdata", "one_two_three_8k_ulaw.wav")
	c.configsrv = testenv.Start(t, "configsrv", "--set", "configsrv.listen=127.0.0.1:0")
	objs := filepath.Join(t.TempDir(), "objects.yaml")
	doc := `kind: Tenant
name: t100
id: 80dd
defaultApplication: annc
---
kind: Pool
name: MCP_LRG
loadBalance: round-robin
monitor: {method: options, interval: 1s, failures: 2}
---
kind: IVRProfile
name: annc
tenant: t100
service: announcement
pool: MCP_LRG
initialPage: file://` + c.wav + `
---
kind: DID
tenant: t100
pattern: "5551000"
profile: annc
`
	if err := os.WriteFile(objs, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := testenv.Run(t, "ctl", "--server", c.configsrv.Endpoints["configsrv"]["api"], "apply", "-f", objs); code != 0 {
		t.Fatalf("apply: %s", out)
	}
	a := c.startMCP(t, "mcp-a", 50000)
	c.startMCP(t, "mcp-b", 51000)
	c.sd = testenv.Start(t, append([]string{"sd"}, append(c.common(), sets("sd.admin.listen=127.0.0.1:0", "sd.recovery_grace=2s")...)...)...)
	c.rm = testenv.Start(t, append([]string{"rm"}, append(c.common(), sets("rm.sip.listen=127.0.0.1:0", "rm.admin.listen=127.0.0.1:0")...)...)...)
	c.waitPool(t, "both mcps in the pool", "mcp-a", "mcp-b")

	// rm routes to both.
	for i := 0; i < 4; i++ {
		if code, by := c.call(t); code != 200 || by != "remote" {
			t.Fatalf("call %d: code %d, hung up by %q", i, code, by)
		}
	}
	if n := c.callsPerMCP(t); n["mcp-a"] != 2 || n["mcp-b"] != 2 {
		t.Fatalf("round-robin over two mcps: %v", n)
	}

	// Drain mcp-a with a call in progress (placed on it directly).
	held := startCall(t, "sip:annc@"+a.Endpoints["mcp"]["sip/udp"]+";play=file://"+c.wav+";repeat=forever", 8*time.Second)
	time.Sleep(500 * time.Millisecond)
	a.Signal(t, syscall.SIGTERM)
	var wg sync.WaitGroup
	failures := make(chan string, 20)
	stop := time.Now().Add(4 * time.Second)
	for time.Now().Before(stop) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _ := c.call(t); code != 200 {
				failures <- strconv.Itoa(code)
			}
		}()
		time.Sleep(400 * time.Millisecond)
	}
	c.waitPool(t, "mcp-a out of the pool while it drains", "mcp-b")
	if a.Exited() {
		t.Fatal("mcp-a exited with its call in progress")
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Errorf("a call placed during the drain failed with %s", f)
	}
	if code := a.Wait(20 * time.Second); code != 0 {
		t.Fatalf("mcp-a exit code %d after its drain", code)
	}
	if err := held.Wait(); err != nil {
		t.Fatalf("the call held on mcp-a failed during its drain: %v", err)
	}

	// A killed mcp goes critical and leaves the pool; calls keep succeeding.
	cc := c.startMCP(t, "mcp-c", 52000)
	c.waitPool(t, "mcp-c in the pool", "mcp-b", "mcp-c")
	if err := cc.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.waitPool(t, "killed mcp-c out of the pool", "mcp-b")
	for i := 0; i < 3; i++ {
		if code, _ := c.call(t); code != 200 {
			t.Fatalf("call after the kill: %d", code)
		}
	}
}
