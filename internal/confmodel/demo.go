package confmodel

import "fmt"

// Names used by the demo configuration.
const (
	// DemoTenant is the demo tenant's name.
	DemoTenant = "t100"
	// DemoTenantID is the demo tenant's gvp-tenant-id.
	DemoTenantID = "80dd"
	// DemoProfile is the demo IVR profile, the default application of the root and demo tenants.
	DemoProfile = "IVRAppDefault"
	// DemoDID is the demo number, routed to DemoProfile.
	DemoDID = "5551000"
	// DemoPool is the demo MCP pool.
	DemoPool = "MCP_LRG"
	// DemoMCP is the name of the local MCP in the demo pool.
	DemoMCP = "mcp-0"
	// DefaultDemoInitialPage is the demo profile's initial page when DemoConfig names none.
	DefaultDemoInitialPage = "http://127.0.0.1:8000/hello.vxml"
	// DefaultDemoMCPAddress is the local MCP's address when DemoConfig names none (mcp's
	// default SIP port).
	DefaultDemoMCPAddress = "127.0.0.1:5070"
)

// DemoConfig parameterizes DemoObjects.
type DemoConfig struct {
	// InitialPage is the URL of the demo VoiceXML application; DefaultDemoInitialPage when empty.
	InitialPage string
	// MCPAddress is the local MCP's SIP address host:port; DefaultDemoMCPAddress when empty.
	MCPAddress string
	// MCPTransport is udp or tcp; DefaultTransport when empty.
	MCPTransport Transport
	// MCPCapacity is the local MCP's capacity; DefaultMCPCapacity when zero.
	MCPCapacity int
}

// DemoObjects returns a complete, valid configuration for the all-in-one local mode: the root
// tenant with DemoProfile as default application; tenant t100 (id 80dd) with the same default;
// the voicexml profile IVRAppDefault (in the root tenant, so every tenant resolves it) whose
// initial page is cfg.InitialPage, served by pool MCP_LRG; DID 5551000 of t100 routed to it;
// pool MCP_LRG (round-robin, OPTIONS monitor every 5 s, 2 failures) with the local MCP as its
// only member.
func DemoObjects(cfg DemoConfig) ([]Object, error) {
	if cfg.InitialPage == "" {
		cfg.InitialPage = DefaultDemoInitialPage
	}
	if cfg.MCPAddress == "" {
		cfg.MCPAddress = DefaultDemoMCPAddress
	}
	objs := []Object{
		&Tenant{Name: RootTenant, DefaultApplication: DemoProfile},
		&Tenant{Name: DemoTenant, ID: DemoTenantID, Parent: RootTenant, DefaultApplication: DemoProfile},
		&Pool{Name: DemoPool, LoadBalance: LoadBalanceRoundRobin,
			Monitor: Monitor{Method: MonitorOptions, Interval: Duration(DefaultMonitorInterval), Failures: DefaultMonitorFailures}},
		&IVRProfile{Name: DemoProfile, Tenant: RootTenant, Service: ServiceVoiceXML, InitialPage: cfg.InitialPage, Pool: DemoPool},
		&DID{Tenant: DemoTenant, Pattern: DemoDID, Profile: DemoProfile},
		&MCP{Name: DemoMCP, Pool: DemoPool, Address: cfg.MCPAddress, Transport: cfg.MCPTransport, Capacity: cfg.MCPCapacity},
	}
	if err := Validate(objs); err != nil {
		return nil, fmt.Errorf("demo configuration: %w", err)
	}
	return objs, nil
}
