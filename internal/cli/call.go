package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/opengvp/gvp/internal/caller"
	"github.com/opengvp/gvp/internal/logging"
	"github.com/opengvp/gvp/internal/media"
)

func init() {
	extraCommands = append(extraCommands, newCallCommand)
}

// newCallCommand is `gvp call`: a command-line caller and load generator.
func newCallCommand() *cobra.Command {
	var (
		o           caller.Options
		dtmf        string
		headers     []string
		jsonOut     bool
		calls       int
		rate        float64
		concurrency int
		listen      string
		rtpPorts    string
		logLevel    string
		silence     bool
	)
	cmd := &cobra.Command{
		Use:   "call SIP-URI",
		Short: "place a SIP call (DTMF, audio, recording) or many (load generator) and print a summary",
		Long: `call places a call to SIP-URI on gvp's own user agent and media engine and prints the final
code, the setup time, the audio received, the digits sent, who hung up and the GVP session id of the
200 (X-Genesys-GVP-Session-ID). With --calls it becomes a load generator and prints the setup-time
percentiles and the failures by code. Calls through a Record-Route proxy (rm) send ACK and BYE along
the route set.

Examples:
  gvp call 'sip:annc@127.0.0.1:5070;play=file:///tmp/hello.wav'
  gvp call sip:5551000@127.0.0.1:5060 --dtmf '1@2s,2@2.5s' --play in.wav --record heard.wav --hangup-after 20s
  gvp call 'sip:annc@127.0.0.1:5070;play=file:///tmp/hello.wav' --calls 1000 --rate 100 --concurrency 500 --json`,
		Args:          cobra.ExactArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Target = args[0]
			var err error
			if o.DTMF, err = caller.ParseDTMF(dtmf); err != nil {
				return &UsageError{err}
			}
			if o.DTMFMethod != caller.DTMFRFC4733 && o.DTMFMethod != caller.DTMFInfo {
				return &UsageError{fmt.Errorf("--dtmf-method %q: want rfc4733 or info", o.DTMFMethod)}
			}
			if len(headers) > 0 {
				o.Headers = map[string]string{}
				for _, h := range headers {
					k, v, ok := strings.Cut(h, ":")
					if !ok {
						return &UsageError{fmt.Errorf("--header %q: want Name: value", h)}
					}
					o.Headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
				}
			}
			if !silence {
				scfg := media.DefaultSessionConfig()
				scfg.SendSilence = false
				o.Session = &scfg
			}
			acfg := caller.DefaultAgentConfig()
			acfg.Listen = listen
			if _, err := fmt.Sscanf(rtpPorts, "%d-%d", &acfg.RTPPortMin, &acfg.RTPPortMax); err != nil {
				return &UsageError{fmt.Errorf("--rtp-ports %q: want MIN-MAX", rtpPorts)}
			}
			lcfg := logging.DefaultConfig()
			lcfg.Level, lcfg.Format = logLevel, "console"
			if err := lcfg.Validate("--log-level"); err != nil {
				return &UsageError{err}
			}
			acfg.Logger = logging.New(lcfg, cmd.ErrOrStderr())
			a, err := caller.NewAgent(acfg)
			if err != nil {
				return err
			}
			defer a.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			if calls > 0 {
				res, err := a.Load(ctx, caller.LoadOptions{Options: o, Calls: calls, Rate: rate, Concurrency: concurrency})
				if err != nil {
					return &UsageError{err}
				}
				if jsonOut {
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					if err := enc.Encode(res); err != nil {
						return err
					}
				} else {
					fmt.Fprint(out, res.String())
				}
				if res.Failed > 0 {
					return fmt.Errorf("%d of %d calls failed", res.Failed, res.Calls)
				}
				return nil
			}
			r := a.Run(ctx, o)
			if jsonOut {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else {
				fmt.Fprint(out, r.String())
			}
			if r.Code/100 != 2 {
				return fmt.Errorf("call failed: %d %s", r.Code, r.Reason)
			}
			return nil
		},
	}
	cmd.SetContext(context.Background())
	f := cmd.Flags()
	f.StringVar(&dtmf, "dtmf", "", "digits to send after the answer, DIGIT@DELAY[,...], e.g. '1@2s,2@2.5s'")
	f.StringVar(&o.DTMFMethod, "dtmf-method", caller.DTMFRFC4733, "how digits are sent: rfc4733 or info")
	f.StringVar(&o.Play, "play", "", "WAV file to play once after the answer")
	f.StringVar(&o.Record, "record", "", "WAV file (mu-law) receiving the audio heard")
	f.DurationVar(&o.HangupAfter, "hangup-after", 0, "hang up this long after the answer (0: wait for the far end)")
	f.DurationVar(&o.SetupTimeout, "setup-timeout", caller.DefaultSetupTimeout, "give up (CANCEL) when not answered by then")
	f.DurationVar(&o.MaxDuration, "max-duration", caller.DefaultMaxDuration, "hang up a call still up after this long")
	f.StringVar(&o.Transport, "transport", "udp", "udp or tcp (a transport= URI parameter wins)")
	f.StringArrayVarP(&headers, "header", "H", nil, "extra INVITE header 'Name: value' (repeatable)")
	f.BoolVar(&jsonOut, "json", false, "print the summary as JSON")
	f.IntVar(&calls, "calls", 0, "load mode: number of calls to place")
	f.Float64Var(&rate, "rate", 0, "load mode: new calls per second (0: as fast as --concurrency allows)")
	f.IntVar(&concurrency, "concurrency", 0, "load mode: most calls up at once (default --calls)")
	f.StringVar(&listen, "listen", caller.DefaultListen, "local SIP address (UDP and TCP)")
	f.StringVar(&rtpPorts, "rtp-ports", fmt.Sprintf("%d-%d", caller.DefaultRTPPortMin, caller.DefaultRTPPortMax), "local RTP port range")
	f.BoolVar(&silence, "send-silence", true, "send silence while not playing or sending digits (false: listen only, as sipp does; halves the far end's media work)")
	f.StringVar(&logLevel, "sip-log-level", "warn", "protocol log level on stderr: debug, info, warn, error")
	return cmd
}
