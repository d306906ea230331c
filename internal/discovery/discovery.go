// Package discovery is gvp's service registry: mcps register themselves as service instances
// with a health check, and sd lists the passing instances with blocking queries and keeps
// tenant information in the registry's key/value store.
//
// Registry has two implementations behind the same interface: Consul (production) and Memory
// (local mode and tests; it simulates health and can run the HTTP checks itself). Registrar
// keeps one instance registered for the life of a role. See README.md.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"
)

// ServiceMCP is the service name under which mcps register.
const ServiceMCP = "gvp-mcp"

// Meta keys an mcp sets on its instance; sd reads them to fill in pool members.
const (
	// MetaCapacity is the mcp's capacity in concurrent calls, a decimal integer.
	MetaCapacity = "capacity"
	// MetaTransport is the SIP transport to reach the mcp: udp or tcp.
	MetaTransport = "transport"
	// MetaVersion is the gvp version the mcp runs.
	MetaVersion = "version"
	// MetaName is the mcp's configured name (mcp.name).
	MetaName = "name"
)

// Status is the health of an instance, as Consul reports it.
type Status string

// The health states.
const (
	StatusPassing  Status = "passing"
	StatusWarning  Status = "warning"
	StatusCritical Status = "critical"
)

// ErrNotFound is returned when deregistering an instance the registry does not know.
var ErrNotFound = errors.New("not found")

// Check is an HTTP health check run by the registry against an instance.
type Check struct {
	// HTTP is the URL probed with GET; 2xx is passing, 429 warning, anything else critical.
	HTTP string
	// Interval is the time between two probes.
	Interval time.Duration
	// Timeout bounds one probe.
	Timeout time.Duration
	// DeregisterCriticalAfter removes the instance once its check has been critical this long;
	// zero never removes it. Consul enforces a minimum of one minute.
	DeregisterCriticalAfter time.Duration
}

// Instance is one registered instance of a service.
type Instance struct {
	// ID is unique in the registry (for Consul: on the agent).
	ID string
	// Service is the service name, e.g. ServiceMCP.
	Service string
	// Address is the host (an IP address or a name) the instance serves on.
	Address string
	// Port is the instance's service port (for an mcp, its SIP port).
	Port int
	// Meta is free-form key/value information (see the Meta* keys).
	Meta map[string]string
	// Check, when set, is the instance's health check.
	Check *Check
	// Status is the initial health when registering (default passing when there is no check,
	// else critical, as Consul does), and the current health in query results.
	Status Status
}

// Clone returns a deep copy of in.
func (in Instance) Clone() Instance {
	out := in
	out.Meta = maps.Clone(in.Meta)
	if in.Check != nil {
		c := *in.Check
		out.Check = &c
	}
	return out
}

// Validate checks what every registry needs.
func (in Instance) Validate() error {
	switch {
	case in.ID == "":
		return errors.New("instance id must not be empty")
	case in.Service == "":
		return fmt.Errorf("instance %s: service name must not be empty", in.ID)
	case in.Address == "":
		return fmt.Errorf("instance %s: address must not be empty", in.ID)
	case in.Port < 1 || in.Port > 65535:
		return fmt.Errorf("instance %s: port %d out of range 1-65535", in.ID, in.Port)
	}
	if c := in.Check; c != nil {
		if !strings.HasPrefix(c.HTTP, "http://") && !strings.HasPrefix(c.HTTP, "https://") {
			return fmt.Errorf("instance %s: check URL %q must be http(s)", in.ID, c.HTTP)
		}
		if c.Interval <= 0 || c.Timeout <= 0 {
			return fmt.Errorf("instance %s: check interval and timeout must be positive", in.ID)
		}
	}
	switch in.Status {
	case "", StatusPassing, StatusWarning, StatusCritical:
	default:
		return fmt.Errorf("instance %s: unknown status %q", in.ID, in.Status)
	}
	return nil
}

// QueryOptions make a list a blocking query.
type QueryOptions struct {
	// WaitIndex, when not zero, makes the query wait until the registry's index for the
	// result moves past it (or WaitTime passes); pass the index of the previous answer.
	WaitIndex uint64
	// WaitTime bounds the wait; zero means the registry's default (Consul: 5 minutes).
	WaitTime time.Duration
}

// Registry registers service instances and lists the healthy ones.
type Registry interface {
	// Register adds or replaces the instance in.ID.
	Register(ctx context.Context, in Instance) error
	// Deregister removes the instance; an unknown id is ErrNotFound (Consul answers 404 only
	// for ids it never knew on that agent).
	Deregister(ctx context.Context, id string) error
	// Registered reports whether the (local agent of the) registry knows instance id.
	Registered(ctx context.Context, id string) (bool, error)
	// Passing lists the instances of service whose checks all pass, sorted by ID, with the
	// index of the answer. With q.WaitIndex set it blocks until the index differs from it or
	// q.WaitTime passes. An index lower than the previous one means the registry was reset:
	// start again from zero.
	Passing(ctx context.Context, service string, q QueryOptions) ([]Instance, uint64, error)
	// KVPut stores value under key.
	KVPut(ctx context.Context, key string, value []byte) error
	// KVGet returns the value under key and whether it exists.
	KVGet(ctx context.Context, key string) ([]byte, bool, error)
	// KVDelete removes key; a missing key is not an error.
	KVDelete(ctx context.Context, key string) error
}
