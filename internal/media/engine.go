// Package media is the media engine of the mcp role: per-call RTP sessions
// over UDP with G.711 audio, RFC 4733 and in-band DTMF, prompt playback with
// barge-in, recording, RTCP and metrics. It contains no SIP: the caller
// negotiates SDP with package sdpneg and hands the result to a Session.
//
// See README.md in this directory for the design (shared scheduler,
// threading model, allocation strategy) and measured figures.
package media

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Engine defaults.
const (
	// DefaultBindAddr is the address RTP sockets are bound to (all IPv4
	// interfaces).
	DefaultBindAddr = "0.0.0.0"
	// maxBindAttempts is how many port pairs NewSession tries when a port
	// is taken by another process.
	maxBindAttempts = 16
)

// Config configures an Engine. Start from DefaultConfig.
type Config struct {
	// BindAddr is the local IP address of RTP/RTCP sockets (default
	// 0.0.0.0).
	BindAddr netip.Addr
	// PortMin and PortMax bound the RTP/RTCP ports (default 20000-45000).
	PortMin, PortMax int
	// PortHoldOff is how long a released port pair is kept unused (default
	// 2 s).
	PortHoldOff time.Duration
	// Workers is the number of scheduler goroutines (default GOMAXPROCS).
	Workers int
	// PhaseSlots is the number of send phases each worker splits the 20 ms
	// tick into (default DefaultPhaseSlots = 20, at most 100). A session
	// gets a phase when it starts and keeps it, so with many calls a
	// wake-up sends for only about 1/(Workers*PhaseSlots) of them and a
	// call's send time varies only with that burst. 1 sends for all of a
	// worker's calls in one burst per tick.
	PhaseSlots int
	// WorkerNice, when not 0, is the nice value of the scheduler workers' threads (Linux; -20
	// to 19, lower runs first). A media server gives them -10 so that a busy host delays a
	// send phase less; values below the process's own need CAP_SYS_NICE, and a refusal is
	// logged once, the workers then running at the process's priority.
	WorkerNice int
	// Logger receives engine-level logs (default zerolog.Nop()).
	Logger zerolog.Logger
	// Registerer, when not nil, gets the engine's Prometheus collectors.
	Registerer prometheus.Registerer
}

// DefaultConfig returns the default engine configuration.
func DefaultConfig() Config {
	return Config{
		BindAddr:    netip.MustParseAddr(DefaultBindAddr),
		PortMin:     DefaultPortMin,
		PortMax:     DefaultPortMax,
		PortHoldOff: DefaultPortHoldOff,
		Workers:     runtime.GOMAXPROCS(0),
		PhaseSlots:  DefaultPhaseSlots,
		Logger:      zerolog.Nop(),
	}
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	if !c.BindAddr.IsValid() {
		return errors.New("media: bind address not set")
	}
	if c.Workers < 1 {
		return fmt.Errorf("media: workers %d < 1", c.Workers)
	}
	if c.WorkerNice < -20 || c.WorkerNice > 19 {
		return fmt.Errorf("media: worker nice %d not in -20 to 19", c.WorkerNice)
	}
	if c.PhaseSlots < 1 || c.PhaseSlots > maxPhaseSlots {
		return fmt.Errorf("media: phase slots %d not in 1-%d", c.PhaseSlots, maxPhaseSlots)
	}
	if c.PortHoldOff < 0 {
		return fmt.Errorf("media: negative port hold-off %v", c.PortHoldOff)
	}
	if c.PortMin < 1024 || c.PortMax > 65535 || c.PortMax <= c.PortMin {
		return fmt.Errorf("media: invalid port range %d-%d", c.PortMin, c.PortMax)
	}
	return nil
}

// Engine owns what all calls share: the port allocator, the scheduler and
// the metrics. Create one per process.
type Engine struct {
	cfg     Config
	ports   *PortAllocator
	sched   *scheduler
	metrics *Metrics
	log     zerolog.Logger
}

// NewEngine validates cfg and starts the scheduler.
func NewEngine(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ports, err := NewPortAllocator(cfg.PortMin, cfg.PortMax, cfg.PortHoldOff)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	m, err := newMetrics(cfg.Registerer, ports)
	if err != nil {
		return nil, fmt.Errorf("media: register metrics: %w", err)
	}
	return &Engine{cfg: cfg, ports: ports, sched: newScheduler(cfg.Workers, cfg.PhaseSlots, m, cfg.WorkerNice, cfg.Logger), metrics: m, log: cfg.Logger}, nil
}

// Ports returns the engine's port allocator.
func (e *Engine) Ports() *PortAllocator { return e.ports }

// Metrics returns the engine's collectors.
func (e *Engine) Metrics() *Metrics { return e.metrics }

// Close stops the scheduler. Sessions must be closed first.
func (e *Engine) Close() { e.sched.close() }

// NewSession allocates a port pair, binds the RTP and RTCP sockets and
// returns a session ready for SDP negotiation (use LocalAddr in the SDP,
// then Start with the negotiated media).
func (e *Engine) NewSession(cfg SessionConfig) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var lastErr error
	for range maxBindAttempts {
		port, err := e.ports.Allocate()
		if err != nil {
			return nil, fmt.Errorf("new media session: %w", err)
		}
		rtpConn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(e.cfg.BindAddr, uint16(port))))
		if err != nil {
			e.ports.Release(port)
			lastErr = err
			continue
		}
		rtcpConn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(e.cfg.BindAddr, uint16(port+1))))
		if err != nil {
			rtpConn.Close()
			e.ports.Release(port)
			lastErr = err
			continue
		}
		s := newSession(e, cfg, port, rtpConn, rtcpConn)
		e.metrics.Sessions.Inc()
		return s, nil
	}
	return nil, fmt.Errorf("new media session: bind RTP ports: %w", lastErr)
}
