// Package logging builds gvp's one root zerolog logger and bridges log/slog to it, so libraries
// that log through slog (sipgo among them) end up in the same stream with the same fields.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Config selects the level and format of the logs.
type Config struct {
	// Level is one of trace, debug, info, warn, error. Default "info".
	Level string `mapstructure:"level"`
	// Format is "json" (default, one object per line) or "console" (human readable).
	Format string `mapstructure:"format"`
}

// DefaultConfig returns info-level JSON logs.
func DefaultConfig() Config { return Config{Level: "info", Format: "json"} }

// Validate checks the level and format; prefix is the key of this section.
func (c Config) Validate(prefix string) error {
	if _, err := zerolog.ParseLevel(c.Level); err != nil || c.Level == "" {
		return fmt.Errorf("config key %q: unknown level %q (want trace, debug, info, warn, error)", prefix+".level", c.Level)
	}
	switch c.Format {
	case "json", "console":
	default:
		return fmt.Errorf("config key %q: unknown format %q (want json or console)", prefix+".format", c.Format)
	}
	return nil
}

// New returns the root logger writing to w, and makes it the target of log/slog's default logger.
func New(cfg Config, w io.Writer) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(cfg.Level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	if cfg.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	// The logger itself lets everything through; the process-wide level filters, so that a
	// reload (SetLevel) changes the level of every logger derived from this one.
	zerolog.SetGlobalLevel(lvl)
	l := zerolog.New(w).With().Timestamp().Logger()
	slog.SetDefault(slog.New(NewSlogHandler(l)))
	return l
}

// SetLevel changes the level of every logger made by New (configuration reloads).
func SetLevel(level string) error {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil {
		return err
	}
	zerolog.SetGlobalLevel(lvl)
	return nil
}

// SlogHandler is a slog.Handler that writes records to a zerolog logger.
type SlogHandler struct {
	l      zerolog.Logger
	prefix string // group prefix for attribute keys
}

// NewSlogHandler returns a slog.Handler writing into l.
func NewSlogHandler(l zerolog.Logger) *SlogHandler { return &SlogHandler{l: l} }

func zlevel(l slog.Level) zerolog.Level {
	switch {
	case l < slog.LevelDebug:
		return zerolog.TraceLevel
	case l < slog.LevelInfo:
		return zerolog.DebugLevel
	case l < slog.LevelWarn:
		return zerolog.InfoLevel
	case l < slog.LevelError:
		return zerolog.WarnLevel
	default:
		return zerolog.ErrorLevel
	}
}

// Enabled reports whether the zerolog logger writes records of this level.
func (h *SlogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return zlevel(l) >= h.l.GetLevel() && zlevel(l) >= zerolog.GlobalLevel()
}

// Handle writes one record.
func (h *SlogHandler) Handle(_ context.Context, r slog.Record) error {
	e := h.l.WithLevel(zlevel(r.Level))
	if e == nil {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		addAttr(e, h.prefix, a)
		return true
	})
	e.Msg(r.Message)
	return nil
}

func addAttr(e *zerolog.Event, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	key := prefix + a.Key
	switch a.Value.Kind() {
	case slog.KindGroup:
		p := prefix
		if a.Key != "" {
			p = key + "."
		}
		for _, g := range a.Value.Group() {
			addAttr(e, p, g)
		}
	case slog.KindString:
		e.Str(key, a.Value.String())
	case slog.KindInt64:
		e.Int64(key, a.Value.Int64())
	case slog.KindUint64:
		e.Uint64(key, a.Value.Uint64())
	case slog.KindFloat64:
		e.Float64(key, a.Value.Float64())
	case slog.KindBool:
		e.Bool(key, a.Value.Bool())
	case slog.KindDuration:
		e.Dur(key, a.Value.Duration())
	case slog.KindTime:
		e.Time(key, a.Value.Time())
	default:
		if err, ok := a.Value.Any().(error); ok {
			e.AnErr(key, err)
			return
		}
		e.Interface(key, a.Value.Any())
	}
}

// WithAttrs returns a handler whose records carry attrs.
func (h *SlogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	ctx := h.l.With()
	for _, a := range attrs {
		a.Value = a.Value.Resolve()
		ctx = ctx.Interface(h.prefix+a.Key, a.Value.Any())
	}
	return &SlogHandler{l: ctx.Logger(), prefix: h.prefix}
}

// WithGroup returns a handler that prefixes attribute keys with name.
func (h *SlogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &SlogHandler{l: h.l, prefix: h.prefix + name + "."}
}
