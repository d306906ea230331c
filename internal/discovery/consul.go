package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/hashicorp/consul/api"
)

// DefaultConsulAddress is the Consul agent's HTTP address when none is given.
const DefaultConsulAddress = "127.0.0.1:8500"

// Consul is a Registry on a Consul agent's HTTP API: instances are registered with the local
// agent (which runs their checks), lists are health queries with passing=true, and keys live in
// Consul's KV store.
type Consul struct {
	c     *api.Client
	token string
}

// ConsulOption configures a Consul registry.
type ConsulOption func(*api.Config)

// WithConsulToken sends the ACL token with every request.
func WithConsulToken(token string) ConsulOption {
	return func(c *api.Config) { c.Token = token }
}

// WithConsulHTTPClient sets the HTTP client (default: Consul's pooled client).
func WithConsulHTTPClient(hc *http.Client) ConsulOption {
	return func(c *api.Config) { c.HttpClient = hc }
}

// NewConsul returns a registry on the agent at address (host:port, or an http(s) URL;
// DefaultConsulAddress when empty). It does not contact the agent.
func NewConsul(address string, opts ...ConsulOption) (*Consul, error) {
	if address == "" {
		address = DefaultConsulAddress
	}
	cfg := &api.Config{Address: address}
	for _, o := range opts {
		o(cfg)
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul client for %s: %w", address, err)
	}
	return &Consul{c: c, token: cfg.Token}, nil
}

// Client returns the underlying Consul API client.
func (r *Consul) Client() *api.Client { return r.c }

func durationString(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}

// Register implements Registry: PUT /v1/agent/service/register, replacing existing checks.
func (r *Consul) Register(ctx context.Context, in Instance) error {
	if err := in.Validate(); err != nil {
		return err
	}
	reg := &api.AgentServiceRegistration{
		ID:      in.ID,
		Name:    in.Service,
		Address: in.Address,
		Port:    in.Port,
		Meta:    in.Meta,
	}
	if c := in.Check; c != nil {
		reg.Check = &api.AgentServiceCheck{
			Name:                           in.Service + " readiness",
			HTTP:                           c.HTTP,
			Method:                         http.MethodGet,
			Interval:                       durationString(c.Interval),
			Timeout:                        durationString(c.Timeout),
			DeregisterCriticalServiceAfter: durationString(c.DeregisterCriticalAfter),
			Status:                         string(in.Status),
		}
	}
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true, Token: r.token}.WithContext(ctx)
	if err := r.c.Agent().ServiceRegisterOpts(reg, opts); err != nil {
		return fmt.Errorf("consul register %s: %w", in.ID, err)
	}
	return nil
}

// Deregister implements Registry.
func (r *Consul) Deregister(ctx context.Context, id string) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	if err := r.c.Agent().ServiceDeregisterOpts(id, q); err != nil {
		var se api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusNotFound {
			return fmt.Errorf("consul deregister %s: %w", id, ErrNotFound)
		}
		return fmt.Errorf("consul deregister %s: %w", id, err)
	}
	return nil
}

// Registered implements Registry: whether the local agent has the service id.
func (r *Consul) Registered(ctx context.Context, id string) (bool, error) {
	q := (&api.QueryOptions{}).WithContext(ctx)
	svcs, err := r.c.Agent().ServicesWithFilterOpts("", q)
	if err != nil {
		return false, fmt.Errorf("consul agent services: %w", err)
	}
	_, ok := svcs[id]
	return ok, nil
}

// Passing implements Registry with GET /v1/health/service/<service>?passing=true, a blocking
// query when q.WaitIndex is set.
func (r *Consul) Passing(ctx context.Context, service string, q QueryOptions) ([]Instance, uint64, error) {
	qo := (&api.QueryOptions{WaitIndex: q.WaitIndex, WaitTime: q.WaitTime}).WithContext(ctx)
	entries, meta, err := r.c.Health().Service(service, "", true, qo)
	if err != nil {
		return nil, 0, fmt.Errorf("consul health query for %s: %w", service, err)
	}
	out := make([]Instance, 0, len(entries))
	for _, e := range entries {
		if e.Service == nil {
			continue
		}
		addr := e.Service.Address
		if addr == "" && e.Node != nil {
			addr = e.Node.Address
		}
		out = append(out, Instance{
			ID:      e.Service.ID,
			Service: e.Service.Service,
			Address: addr,
			Port:    e.Service.Port,
			Meta:    e.Service.Meta,
			Status:  StatusPassing,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, meta.LastIndex, nil
}

// KVPut implements Registry.
func (r *Consul) KVPut(ctx context.Context, key string, value []byte) error {
	if _, err := r.c.KV().Put(&api.KVPair{Key: key, Value: value}, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("consul kv put %s: %w", key, err)
	}
	return nil
}

// KVGet implements Registry.
func (r *Consul) KVGet(ctx context.Context, key string) ([]byte, bool, error) {
	p, _, err := r.c.KV().Get(key, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, false, fmt.Errorf("consul kv get %s: %w", key, err)
	}
	if p == nil {
		return nil, false, nil
	}
	return p.Value, true, nil
}

// KVDelete implements Registry.
func (r *Consul) KVDelete(ctx context.Context, key string) error {
	if _, err := r.c.KV().Delete(key, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("consul kv delete %s: %w", key, err)
	}
	return nil
}
