// Package app assembles gvp: the whole configuration, the modules (one per role plus the
// embedded components of local mode) with their dependencies, and the wiring between roles
// that run in the same process.
package app

import (
	"errors"
	"time"

	"github.com/opengvp/gvp/internal/config"
	"github.com/opengvp/gvp/internal/logging"
	"github.com/opengvp/gvp/roles/configsrv"
	"github.com/opengvp/gvp/roles/mcp"
	"github.com/opengvp/gvp/roles/rm"
	"github.com/opengvp/gvp/roles/rs"
	"github.com/opengvp/gvp/roles/sd"
)

// Defaults of the top-level keys.
const (
	// DefaultDataDir holds local state: SQLite databases, billing spools.
	DefaultDataDir = "/var/lib/gvp"
	// DefaultDrainTimeout bounds how long a drain waits for calls in progress.
	DefaultDrainTimeout = 30 * time.Second
	// DefaultConfigsrvURL is where roles reach the configuration server.
	DefaultConfigsrvURL = "http://127.0.0.1:8888"
	// DefaultBroker is the STOMP address of the message broker (ActiveMQ's stomp connector;
	// its `auto` connector on 61616 works too).
	DefaultBroker = "127.0.0.1:61613"
	// DefaultConsul is the Consul agent's HTTP address.
	DefaultConsul = "127.0.0.1:8500"
	// DefaultEmbeddedBrokerListen is the embedded STOMP broker of local mode.
	DefaultEmbeddedBrokerListen = "127.0.0.1:61613"
)

// Config is gvp's whole configuration; see configs/gvp.yaml for every key with its default.
type Config struct {
	Log logging.Config `mapstructure:"log"`
	// DataDir holds local state.
	DataDir  string         `mapstructure:"data_dir"`
	Shutdown ShutdownConfig `mapstructure:"shutdown"`
	// GCPercent is the Go collector's GOGC for the process: 0 picks it (see GCPercent).
	GCPercent int           `mapstructure:"gc_percent"`
	Cluster   ClusterConfig `mapstructure:"cluster"`
	Broker    BrokerConfig  `mapstructure:"broker"`

	RM        rm.Config        `mapstructure:"rm"`
	MCP       mcp.Config       `mapstructure:"mcp"`
	RS        rs.Config        `mapstructure:"rs"`
	Configsrv configsrv.Config `mapstructure:"configsrv"`
	SD        sd.Config        `mapstructure:"sd"`
}

// ShutdownConfig governs draining.
type ShutdownConfig struct {
	// DrainTimeout is how long SIGTERM waits for calls in progress before stopping anyway.
	DrainTimeout time.Duration `mapstructure:"drain_timeout"`
}

// ClusterConfig is how roles reach the shared services. Roles started in the same process
// (local mode) reach each other directly, whatever these say.
type ClusterConfig struct {
	// ConfigsrvURL is the configuration server's base URL.
	ConfigsrvURL string `mapstructure:"configsrv_url"`
	// ConfigsrvToken is the bearer token sent to configsrv.
	ConfigsrvToken string `mapstructure:"configsrv_token"`
	// Broker is the STOMP address (host:port) of the message broker.
	Broker string `mapstructure:"broker"`
	// BrokerLogin and BrokerPasscode authenticate to the broker; empty for none.
	BrokerLogin    string `mapstructure:"broker_login"`
	BrokerPasscode string `mapstructure:"broker_passcode"`
	// Consul is the Consul agent's HTTP address; empty uses the in-memory registry.
	Consul string `mapstructure:"consul"`
	// ConsulToken is the Consul ACL token.
	ConsulToken string `mapstructure:"consul_token"`
}

// BrokerConfig is the embedded STOMP broker started by the `broker` module (part of local mode).
type BrokerConfig struct {
	// Listen is the embedded broker's host:port.
	Listen string `mapstructure:"listen"`
}

// DefaultConfig returns the defaults of every key.
func DefaultConfig() Config {
	return Config{
		Log:       logging.DefaultConfig(),
		DataDir:   DefaultDataDir,
		Shutdown:  ShutdownConfig{DrainTimeout: DefaultDrainTimeout},
		Cluster:   ClusterConfig{ConfigsrvURL: DefaultConfigsrvURL, Broker: DefaultBroker, Consul: DefaultConsul},
		Broker:    BrokerConfig{Listen: DefaultEmbeddedBrokerListen},
		RM:        rm.DefaultConfig(),
		MCP:       mcp.DefaultConfig(),
		RS:        rs.DefaultConfig(),
		Configsrv: configsrv.DefaultConfig(),
		SD:        sd.DefaultConfig(),
	}
}

// Validate checks every section and names the first bad key.
func (c *Config) Validate() error {
	if c.GCPercent < -1 {
		return config.Errorf("gc_percent", "must be -1 (collector off), 0 (automatic) or a positive percentage, not %d", c.GCPercent)
	}
	if err := c.Log.Validate("log"); err != nil {
		return err
	}
	if c.DataDir == "" {
		return config.Errorf("data_dir", "must not be empty")
	}
	if c.Shutdown.DrainTimeout < 0 {
		return config.Errorf("shutdown.drain_timeout", "must not be negative")
	}
	if err := config.CheckURL("cluster.configsrv_url", c.Cluster.ConfigsrvURL); err != nil {
		return err
	}
	if err := config.CheckHostPort("cluster.broker", c.Cluster.Broker); err != nil {
		return err
	}
	if c.Cluster.Consul != "" {
		if err := config.CheckHostPort("cluster.consul", c.Cluster.Consul); err != nil {
			return err
		}
	}
	if err := config.CheckHostPort("broker.listen", c.Broker.Listen); err != nil {
		return err
	}
	return errors.Join(
		c.RM.Validate("rm"),
		c.MCP.Validate("mcp"),
		c.RS.Validate("rs"),
		c.Configsrv.Validate("configsrv"),
		c.SD.Validate("sd"),
	)
}

// RMGCPercent is the collector setting of a process that runs only rm, when neither gc_percent
// nor GOGC sets one. rm's live heap is small (a few KiB per dialog) and its allocation rate
// high (parsed messages), so Go's default of 100 collects many times a second under load;
// 400 cut the collector's share of rm's CPU from 22% to 8% at 3,000 calls/s (roles/rm/README.md).
const RMGCPercent = 400

// GCPercent returns the GOGC to apply for a process running targets, and whether to apply
// one: gc_percent when set, else nothing when the GOGC environment variable (gogcEnv) is set
// (the runtime already applied it), else RMGCPercent for a process that runs only rm, else
// nothing (Go's default).
func GCPercent(c *Config, targets []string, gogcEnv string) (int, bool) {
	switch {
	case c.GCPercent != 0:
		return c.GCPercent, true
	case gogcEnv != "":
		return 0, false
	case len(targets) == 1 && targets[0] == "rm":
		return RMGCPercent, true
	}
	return 0, false
}
