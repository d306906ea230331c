package tts

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/opengvp/gvp/internal/media/wav"
)

// Espeak defaults.
const (
	// EspeakBinary is the program looked up in PATH.
	EspeakBinary = "espeak-ng"
	// DefaultEspeakMaxOutput bounds the WAV one run may produce: 64 MiB,
	// about 25 minutes at espeak-ng's 22 050 Hz.
	DefaultEspeakMaxOutput = 64 << 20
	// espeakWaitDelay is how long a killed espeak-ng may take to exit
	// before its pipes are closed.
	espeakWaitDelay = time.Second
	// maxStderr bounds the error output kept for messages.
	maxStderr = 4 << 10
)

// ErrNoEngine is returned by NewEspeak when espeak-ng is not installed.
var ErrNoEngine = errors.New("no speech engine available")

// Espeak renders text by running the espeak-ng program once per text
// segment, reading the text on standard input (so text can never be taken
// for an option) and a WAV on standard output, which is decoded by walking
// its RIFF chunks and resampled to 8 kHz.
type Espeak struct {
	path string
	// voices maps the lower-case language names espeak-ng knows
	// ("en-us", "fr-fr", "de") to themselves.
	voices map[string]bool
	// rate is the speaking rate in words per minute (0: espeak-ng's
	// default, 175).
	rate      int
	maxOutput int
}

// NewEspeak finds espeak-ng (path "" looks it up in PATH) and lists its
// voices. rate is the speaking rate in words per minute, 0 for the
// default. It returns an error wrapping ErrNoEngine when the program is
// missing or does not run.
func NewEspeak(path string, rate int) (*Espeak, error) {
	if path == "" {
		p, err := exec.LookPath(EspeakBinary)
		if err != nil {
			return nil, fmt.Errorf("%w: %s not found in PATH", ErrNoEngine, EspeakBinary)
		}
		path = p
	}
	if rate < 0 || rate > 1000 {
		return nil, fmt.Errorf("espeak rate %d words per minute is out of range", rate)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--voices").Output()
	if err != nil {
		return nil, fmt.Errorf("%w: %s --voices: %v", ErrNoEngine, path, err)
	}
	e := &Espeak{path: path, voices: parseVoices(out), rate: rate, maxOutput: DefaultEspeakMaxOutput}
	if len(e.voices) == 0 {
		return nil, fmt.Errorf("%w: %s lists no voices", ErrNoEngine, path)
	}
	return e, nil
}

// parseVoices reads the language column of `espeak-ng --voices`.
func parseVoices(out []byte) map[string]bool {
	v := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		if _, err := strconv.Atoi(f[0]); err != nil {
			continue // header line
		}
		v[strings.ToLower(f[1])] = true
	}
	return v
}

// Name implements Engine.
func (e *Espeak) Name() string { return "espeak-ng" }

// Voice implements Engine: the voice for a language tag ("en-US" ->
// "en-us"; "de-AT" -> "de" and "fr-CA" -> "fr-fr" when the region has no
// voice of its own), "" when unknown.
func (e *Espeak) Voice(lang string) string {
	l := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(lang), "_", "-"))
	if e.voices[l] {
		return l
	}
	base, _, _ := strings.Cut(l, "-")
	if e.voices[base] {
		return base
	}
	// A language whose voices all carry a region ("fr-CA" -> "fr-fr").
	if e.voices[base+"-"+base] {
		return base + "-" + base
	}
	return ""
}

// Render implements Engine.
func (e *Espeak) Render(ctx context.Context, text, voice string) ([]int16, error) {
	if !e.voices[voice] {
		return nil, fmt.Errorf("espeak-ng has no voice %q", voice)
	}
	args := []string{"-v", voice, "--stdout", "--stdin"}
	if e.rate > 0 {
		args = append(args, "-s", strconv.Itoa(e.rate))
	}
	cmd := exec.CommandContext(ctx, e.path, args...)
	cmd.Stdin = strings.NewReader(text)
	out := &capWriter{max: e.maxOutput}
	errOut := &capWriter{max: maxStderr, truncate: true}
	cmd.Stdout, cmd.Stderr = out, errOut
	cmd.WaitDelay = espeakWaitDelay
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("espeak-ng: %w", ctx.Err())
		}
		if out.overflow {
			return nil, fmt.Errorf("espeak-ng output exceeds %d bytes", e.maxOutput)
		}
		return nil, fmt.Errorf("espeak-ng: %w: %s", err, strings.TrimSpace(errOut.buf.String()))
	}
	a, err := wav.Parse(out.buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("decode espeak-ng output: %w", err)
	}
	return a.To8kMono(), nil
}

// capWriter keeps at most max bytes: beyond that it fails the write (the
// child then gets EPIPE-like errors and stops), or with truncate drops the
// rest silently.
type capWriter struct {
	buf      bytes.Buffer
	max      int
	truncate bool
	overflow bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	room := w.max - w.buf.Len()
	if len(p) > room {
		w.buf.Write(p[:max(room, 0)])
		if w.truncate {
			return len(p), nil
		}
		w.overflow = true
		return 0, errors.New("output limit reached")
	}
	return w.buf.Write(p)
}
