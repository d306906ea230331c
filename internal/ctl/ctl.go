// Package ctl implements `gvp ctl`, the command line client of configsrv: apply documents,
// get, delete and watch objects.
package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opengvp/gvp/internal/confclient"
	"github.com/opengvp/gvp/internal/confmodel"
)

// Environment variables read when the matching flag is not given.
const (
	// EnvServer overrides the default of --server.
	EnvServer = "GVP_CTL_SERVER"
	// EnvToken overrides the default of --token.
	EnvToken = "GVP_CTL_TOKEN"
	// DefaultTimeout bounds each request (--timeout).
	DefaultTimeout = 30 * time.Second
)

// Exit codes returned by ExitCode.
const (
	ExitOK       = 0
	ExitFailed   = 1 // rejected by the server, unreachable server, or other failure
	ExitUsage    = 2 // bad command line
	exitInternal = ExitFailed
)

// UsageError is a command-line mistake (exit code 2).
type UsageError struct{ Err error }

// Error returns the underlying message.
func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ExitCode maps an error returned by the command to the process exit code: 0 for nil, 2 for
// usage errors (bad flags, arguments, unknown kind or command), 1 for everything else
// (rejected by the server, server unreachable, unreadable file).
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument",
		"invalid argument", "accepts ", "requires at least", "requires at most"} {
		if strings.HasPrefix(msg, p) {
			return ExitUsage
		}
	}
	return exitInternal
}

type globals struct {
	server  string
	token   string
	timeout time.Duration
	client  *confclient.Client
}

// NewCommand returns the `ctl` command with its subcommands apply, get, delete and watch.
// Flags: --server (env GVP_CTL_SERVER, default http://127.0.0.1:8888), --token (env
// GVP_CTL_TOKEN), --timeout (default 30s). Errors are returned, not printed; map them with
// ExitCode.
func NewCommand() *cobra.Command {
	g := &globals{}
	cmd := &cobra.Command{
		Use:           "ctl",
		Short:         "Manage the configuration held by configsrv",
		Long:          "ctl applies, reads, deletes and watches configuration objects (Tenant, IVRProfile, DID, Pool, MCP, Settings) on a configsrv.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("missing subcommand (apply, get, delete or watch); see --help")
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("server") {
				if v := os.Getenv(EnvServer); v != "" {
					g.server = v
				}
			}
			if !cmd.Flags().Changed("token") {
				g.token = os.Getenv(EnvToken)
			}
			c, err := confclient.New(g.server, confclient.WithToken(g.token), confclient.WithRequestTimeout(g.timeout))
			if err != nil {
				return &UsageError{Err: err}
			}
			g.client = c
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	pf := cmd.PersistentFlags()
	pf.StringVar(&g.server, "server", confclient.DefaultServer, "configsrv base URL (env "+EnvServer+")")
	pf.StringVar(&g.token, "token", "", "bearer token (env "+EnvToken+")")
	pf.DurationVar(&g.timeout, "timeout", DefaultTimeout, "timeout of each request")
	cmd.AddCommand(applyCommand(g), getCommand(g), deleteCommand(g), watchCommand(g))
	return cmd
}

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unknown command %q", args[0])
	}
	return nil
}

func argsBetween(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usagef("usage: %s", cmd.UseLine())
		}
		return nil
	}
}

func applyCommand(g *globals) *cobra.Command {
	var (
		file string
		dry  bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE|-",
		Short: "Apply YAML or JSON documents atomically (all or none)",
		Args:  argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usagef("apply needs -f FILE (or -f - for standard input)")
			}
			var (
				data []byte
				err  error
			)
			if file == "-" {
				data, err = io.ReadAll(cmd.InOrStdin())
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", file, err)
			}
			// Decode locally first: errors name the document and field without a round trip.
			if _, err := confmodel.DecodeDocuments(data); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			res, err := g.client.Apply(cmd.Context(), data, dry)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DOC\tKIND\tNAME\tRESULT")
			for _, o := range res.Objects {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", o.Document, o.Kind, o.Name, o.Outcome)
			}
			tw.Flush()
			if dry {
				fmt.Fprintf(out, "dry run: %d object(s) would change; revision stays %d\n", res.Changed, res.Revision)
			} else {
				fmt.Fprintf(out, "%d object(s) changed; revision %d\n", res.Changed, res.Revision)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "documents to apply (- for standard input)")
	cmd.Flags().BoolVar(&dry, "dry-run", false, "validate and report without writing")
	return cmd
}

func parseKind(s string) (confmodel.Kind, error) {
	k, err := confmodel.ParseKind(s)
	if err != nil {
		return "", &UsageError{Err: err}
	}
	return k, nil
}

func getCommand(g *globals) *cobra.Command {
	var (
		output       string
		tenant, pool string
	)
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "Show objects of a kind, or one object (profiles and DIDs are named TENANT/NAME)",
		Args:  argsBetween(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := parseKind(args[0])
			if err != nil {
				return err
			}
			switch output {
			case "table", "yaml", "json":
			default:
				return usagef("invalid output %q: want table, yaml or json", output)
			}
			var objs []confmodel.Object
			if len(args) == 2 {
				o, err := g.client.Get(cmd.Context(), k, args[1])
				if err != nil {
					return err
				}
				objs = []confmodel.Object{o}
			} else {
				objs, _, err = g.client.List(cmd.Context(), k, confclient.ListFilter{Tenant: tenant, Pool: pool})
				if err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			switch output {
			case "yaml":
				return confmodel.EncodeDocuments(out, objs, confmodel.FormatYAML)
			case "json":
				if len(args) == 2 {
					b, err := confmodel.MarshalDocumentJSON(objs[0])
					if err != nil {
						return err
					}
					var v any
					_ = json.Unmarshal(b, &v)
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					return enc.Encode(v)
				}
				return confmodel.EncodeDocuments(out, objs, confmodel.FormatJSON)
			}
			return writeTable(out, k, objs)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, yaml or json")
	cmd.Flags().StringVar(&tenant, "tenant", "", "only profiles and DIDs of this tenant (or tenants under it)")
	cmd.Flags().StringVar(&pool, "pool", "", "only MCPs and profiles of this pool")
	return cmd
}

func writeTable(w io.Writer, k confmodel.Kind, objs []confmodel.Object) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rev := func(o confmodel.Object) string { return strconv.FormatInt(o.Metadata().Revision, 10) }
	switch k {
	case confmodel.KindTenant:
		fmt.Fprintln(tw, "NAME\tID\tPARENT\tDEFAULT-APPLICATION\tREVISION")
		for _, o := range objs {
			t := o.(*confmodel.Tenant)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, dash(t.ID), dash(t.Parent), dash(t.DefaultApplication), rev(o))
		}
	case confmodel.KindIVRProfile:
		fmt.Fprintln(tw, "TENANT\tNAME\tSERVICE\tPOOL\tINITIAL-PAGE\tREVISION")
		for _, o := range objs {
			p := o.(*confmodel.IVRProfile)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Tenant, p.Name, p.Service, dash(p.Pool), dash(p.InitialPage), rev(o))
		}
	case confmodel.KindDID:
		fmt.Fprintln(tw, "TENANT\tPATTERN\tPROFILE\tREVISION")
		for _, o := range objs {
			d := o.(*confmodel.DID)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Tenant, d.Pattern, d.Profile, rev(o))
		}
	case confmodel.KindPool:
		fmt.Fprintln(tw, "NAME\tLOAD-BALANCE\tMONITOR\tREVISION")
		for _, o := range objs {
			p := o.(*confmodel.Pool)
			fmt.Fprintf(tw, "%s\t%s\t%s every %s, %d failures\t%s\n", p.Name, p.LoadBalance, p.Monitor.Method, p.Monitor.Interval, p.Monitor.Failures, rev(o))
		}
	case confmodel.KindMCP:
		fmt.Fprintln(tw, "NAME\tPOOL\tADDRESS\tTRANSPORT\tCAPACITY\tMANAGED\tREVISION")
		for _, o := range objs {
			m := o.(*confmodel.MCP)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%v\t%s\n", m.Name, m.Pool, m.Address, m.Transport, m.Capacity, m.Managed, rev(o))
		}
	case confmodel.KindSettings:
		fmt.Fprintln(tw, "NAME\tKEYS\tREVISION")
		for _, o := range objs {
			s := o.(*confmodel.Settings)
			keys := confmodel.SortedKeys(s.Values)
			sort.Strings(keys)
			fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, dash(strings.Join(keys, ",")), rev(o))
		}
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func deleteCommand(g *globals) *cobra.Command {
	var dry bool
	cmd := &cobra.Command{
		Use:   "delete KIND NAME",
		Short: "Delete an object (refused while other objects reference it)",
		Args:  argsBetween(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := parseKind(args[0])
			if err != nil {
				return err
			}
			res, err := g.client.Delete(cmd.Context(), k, args[1], dry)
			if err != nil {
				return err
			}
			if dry {
				fmt.Fprintf(cmd.OutOrStdout(), "dry run: %s %q would be deleted\n", k, args[1])
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %q deleted; revision %d\n", k, args[1], res.Revision)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dry, "dry-run", false, "check without deleting")
	return cmd
}

func watchCommand(g *globals) *cobra.Command {
	var (
		after int64
		count int
		wait  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print changes as they are committed (one line each: REVISION OP KIND NAME)",
		Args:  argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if after < 0 {
				rev, err := g.client.Revision(ctx)
				if err != nil {
					return err
				}
				after = rev
			}
			out := cmd.OutOrStdout()
			printed := 0
			for {
				wb, err := g.client.Watch(ctx, after, wait)
				if err != nil {
					if ctx.Err() != nil {
						return nil // interrupted
					}
					return err
				}
				if wb.Reset {
					fmt.Fprintf(out, "%d reset - - (the server's revision went back: reload)\n", wb.Revision)
				}
				for _, e := range wb.Events {
					fmt.Fprintf(out, "%d %s %s %s\n", e.Revision, e.Op, e.Kind, e.Name)
					printed++
					if count > 0 && printed >= count {
						return nil
					}
				}
				after = wb.Revision
			}
		},
	}
	cmd.Flags().Int64Var(&after, "after", -1, "print changes after this revision (default: the current one)")
	cmd.Flags().IntVar(&count, "count", 0, "exit after this many changes (0: never)")
	cmd.Flags().DurationVar(&wait, "poll-timeout", confclient.DefaultWatchTimeout, "how long each watch request waits on the server")
	return cmd
}
