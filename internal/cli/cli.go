// Package cli is gvp's command line: one executable whose subcommands run a role (rm, mcp, rs,
// configsrv, sd), all of them (local), or a tool (config, targets, version).
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/opengvp/gvp/configs"
	"github.com/opengvp/gvp/internal/app"
	"github.com/opengvp/gvp/internal/buildinfo"
	"github.com/opengvp/gvp/internal/config"
	"github.com/opengvp/gvp/internal/logging"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1 // a role failed, or a command was rejected
	ExitUsage   = 2 // bad flags, arguments or configuration
)

// UsageError marks errors that exit with ExitUsage.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// globalFlags are the flags every command that loads the configuration shares.
type globalFlags struct {
	configFile string
	sets       []string
	logLevel   string
	dataDir    string
	readyFile  string
	presets    []config.Source // the running command's presets, for reloads
}

// Main runs the command line with args and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := NewRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "gvp: %v\n", err)
	var ue *UsageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	for _, x := range extraExitCoders {
		if code, ok := x(err); ok {
			return code
		}
	}
	return ExitFailure
}

// extraExitCoders let subcommands with their own exit codes (gvp ctl) map their errors.
var extraExitCoders []func(error) (int, bool)

// NewRoot builds the command tree.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "gvp",
		Short: "gvp: an open-source voice platform (SIP resource manager, media server, VoiceXML, reporting)",
		Long: `gvp is one executable that runs any role of the voice platform:

  rm         SIP resource manager: routes calls to media servers (stateful proxy)
  mcp        media control platform: answers calls, RTP media, VoiceXML interpreter
  rs         reporting server: billing records into a database, reporting web services
  configsrv  configuration server: tenants, IVR profiles, DIDs, MCP pools
  sd         service discovery: keeps configsrv's MCP pools in step with Consul
  local      all of the above in one process with embedded backends

Configuration: defaults < --config FILE < GVP_<KEY> environment variables < --set key=value.
See configs/gvp.yaml for every key.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate(buildinfo.String() + "\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{err} })
	pf := root.PersistentFlags()
	pf.StringVarP(&g.configFile, "config", "c", os.Getenv("GVP_CONFIG"), "configuration file (YAML); env GVP_CONFIG")
	pf.StringArrayVar(&g.sets, "set", nil, "override one key, e.g. --set rm.sip.listen=0.0.0.0:5060 (repeatable)")
	pf.StringVar(&g.logLevel, "log-level", "", "log level: trace, debug, info, warn, error (key log.level)")
	pf.StringVar(&g.dataDir, "data-dir", "", "folder for local state (key data_dir)")

	for _, r := range roleCommands {
		root.AddCommand(newRunCommand(g, r))
	}
	root.AddCommand(newVersionCommand(), newConfigCommand(g), newTargetsCommand(g))
	for _, extra := range extraCommands {
		root.AddCommand(extra())
	}
	return root
}

// extraCommands are tools registered by other files of this package (ctl, call).
var extraCommands []func() *cobra.Command

type roleCommand struct {
	name   string
	short  string
	preset []config.Source
}

var roleCommands = []roleCommand{
	{name: app.RM, short: "run the SIP resource manager (routes calls to media servers)"},
	{name: app.MCP, short: "run a media control platform (answers calls, RTP, VoiceXML)"},
	{name: app.RS, short: "run the reporting server (billing records, /ems-rs/ reports)"},
	{name: app.Configsrv, short: "run the configuration server (HTTP API on 8888)"},
	{name: app.SD, short: "run service discovery (Consul to configsrv pool sync, tenant provisioning)"},
	{name: app.Local, short: "run every role in one process with embedded defaults (no external service)",
		preset: []config.Source{{Name: "local preset", YAML: configs.LocalPreset}}},
}

// load merges the configuration layers for a command.
func (g *globalFlags) load(presets []config.Source) (*app.Config, error) {
	cfg := app.DefaultConfig()
	sets := append([]string(nil), g.sets...)
	if g.logLevel != "" {
		sets = append(sets, "log.level="+g.logLevel)
	}
	if g.dataDir != "" {
		sets = append(sets, "data_dir="+g.dataDir)
	}
	if _, err := config.Load(&cfg, config.Options{Presets: presets, File: g.configFile, Sets: sets}); err != nil {
		return nil, &UsageError{err}
	}
	if err := cfg.Validate(); err != nil {
		return nil, &UsageError{err}
	}
	return &cfg, nil
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), buildinfo.String())
			return nil
		},
	}
}

func newConfigCommand(g *globalFlags) *cobra.Command {
	var local bool
	c := &cobra.Command{Use: "config", Short: "print or validate the effective configuration"}
	presets := func() []config.Source {
		if local {
			return []config.Source{{Name: "local preset", YAML: configs.LocalPreset}}
		}
		return nil
	}
	c.PersistentFlags().BoolVar(&local, "local", false, "include the local preset (as `gvp local` does)")
	c.AddCommand(&cobra.Command{
		Use:   "print",
		Short: "print the effective merged configuration, secrets redacted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.load(presets())
			if err != nil {
				return err
			}
			out, err := config.Print(cfg)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}, &cobra.Command{
		Use:   "validate",
		Short: "check the configuration and exit 0 if it is valid (2 if not, naming the key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := g.load(presets()); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "configuration is valid")
			return nil
		},
	})
	return c
}

func newTargetsCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "targets",
		Short: "list the roles, their dependencies, and the start order of `gvp local`",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a := app.New(ptr(app.DefaultConfig()), logging.New(logging.Config{Level: "error", Format: "json"}, io.Discard))
			w := cmd.OutOrStdout()
			for _, m := range a.Mgr.Modules() {
				kind := "role"
				switch {
				case m.Init == nil:
					kind = "group"
				case m.Hidden:
					kind = "component"
				}
				fmt.Fprintf(w, "%-10s %-9s deps=%v\n           %s\n", m.Name, kind, m.Deps, m.Description)
			}
			order, err := a.Mgr.Order([]string{app.Local})
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "\n`gvp local` starts, in order: %v (and stops them in reverse)\n", order)
			return nil
		},
	}
}

func ptr[T any](v T) *T { return &v }
