package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sort"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/opengvp/gvp/internal/app"
	"github.com/opengvp/gvp/internal/lifecycle"
	"github.com/opengvp/gvp/internal/logging"
)

// ExitForced is the exit code when a second signal cuts a drain short.
const ExitForced = 130

func newRunCommand(g *globalFlags, r roleCommand) *cobra.Command {
	c := &cobra.Command{
		Use:   r.name,
		Short: r.short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.presets = r.preset
			cfg, err := g.load(r.preset)
			if err != nil {
				return err
			}
			return runTargets(cmd.Context(), cfg, []string{r.name}, g, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&g.readyFile, "ready-file", "", "once ready, write the listening addresses as JSON to this file")
	return c
}

// runTargets starts the targets and serves until a signal or a fatal error:
// SIGTERM/SIGINT drain (readiness 503, new work refused, work in progress finishes up to
// shutdown.drain_timeout) then exit 0; a second SIGTERM/SIGINT exits at once with ExitForced;
// SIGHUP reloads the configuration file.
func runTargets(ctx context.Context, cfg *app.Config, targets []string, g *globalFlags, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log := logging.New(cfg.Log, stderr)
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
	}
	if pct, ok := app.GCPercent(cfg, targets, os.Getenv("GOGC")); ok {
		debug.SetGCPercent(pct)
		log.Debug().Int("gc_percent", pct).Msg("collector setting")
	}
	a := app.New(cfg, log)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	t0 := time.Now()
	started := make(chan error, 1)
	go func() { started <- a.Mgr.Start(ctx, targets) }()
wait:
	for {
		select {
		case err := <-started:
			if err != nil {
				return err
			}
			break wait
		case s := <-sigs:
			if s == syscall.SIGHUP {
				continue
			}
			log.Warn().Str("signal", s.String()).Msg("signal while starting; exiting")
			return fmt.Errorf("interrupted by %s while starting", s)
		}
	}
	eps := a.Mgr.Endpoints()
	printReady(stdout, targets, eps, time.Since(t0))
	log.Info().Dur("took", time.Since(t0)).Strs("targets", targets).Msg("ready")
	if g.readyFile != "" {
		if err := writeReadyFile(g.readyFile, eps); err != nil {
			return err
		}
	}

	for {
		select {
		case err := <-a.Mgr.Fatal():
			log.Error().Err(err).Msg("role failed; stopping")
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			a.Mgr.Stop(stopCtx)
			cancel()
			return err
		case s := <-sigs:
			if s == syscall.SIGHUP {
				reload(ctx, a, g, log)
				continue
			}
			return drain(a, sigs, log, s)
		}
	}
}

func drain(a *app.App, sigs chan os.Signal, log zerolog.Logger, first os.Signal) error {
	timeout := a.Config().Shutdown.DrainTimeout
	log.Info().Str("signal", first.String()).Dur("drain_timeout", timeout).Msg("draining; a second SIGTERM or SIGINT exits at once")
	done := make(chan struct{})
	go func() {
		defer close(done)
		dctx, cancel := context.WithTimeout(context.Background(), timeout)
		if err := a.Mgr.Drain(dctx); err != nil {
			log.Warn().Err(err).Msg("drain timeout reached; stopping with work in progress")
		}
		cancel()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		a.Mgr.Stop(sctx)
		cancel()
	}()
	for {
		select {
		case <-done:
			log.Info().Msg("stopped")
			return nil
		case s := <-sigs:
			if s == syscall.SIGHUP {
				continue
			}
			log.Warn().Str("signal", s.String()).Msg("second signal: exiting now")
			os.Exit(ExitForced)
		}
	}
}

// reload re-reads the configuration; what can change at run time is applied, the rest is
// reported as needing a restart. A bad file changes nothing.
func reload(ctx context.Context, a *app.App, g *globalFlags, log zerolog.Logger) {
	cfg, err := g.load(g.presets)
	if err != nil {
		log.Error().Err(err).Msg("reload rejected; configuration unchanged")
		return
	}
	old := a.Config()
	if cfg.Log.Level != old.Log.Level {
		if err := logging.SetLevel(cfg.Log.Level); err == nil {
			log.Info().Str("log_level", cfg.Log.Level).Msg("log level changed")
		}
	}
	a.SetConfig(cfg)
	if err := a.Mgr.Reload(ctx); err != nil {
		log.Error().Err(err).Msg("reload partly applied")
		return
	}
	log.Info().Msg("configuration reloaded")
}

func printReady(w io.Writer, targets []string, eps map[string][]lifecycle.Endpoint, took time.Duration) {
	fmt.Fprintf(w, "gvp %v ready in %s\n", targets, took.Round(time.Millisecond))
	names := make([]string, 0, len(eps))
	for n := range eps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, e := range eps[n] {
			fmt.Fprintf(w, "  %-10s %-8s %s\n", n, e.Name, e.Addr)
		}
	}
}

func writeReadyFile(path string, eps map[string][]lifecycle.Endpoint) error {
	m := map[string]map[string]string{}
	for role, list := range eps {
		m[role] = map[string]string{}
		for _, e := range list {
			m[role][e.Name] = e.Addr
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write ready file: %w", err)
	}
	return os.Rename(tmp, path)
}
