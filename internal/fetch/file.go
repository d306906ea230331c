package fetch

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/opengvp/gvp/internal/vxml"
)

// fileTypes maps extensions to media types that mime.TypeByExtension may
// not know on a minimal system.
var fileTypes = map[string]string{
	".vxml":  "application/voicexml+xml",
	".grxml": "application/srgs+xml",
	".gram":  "application/srgs",
	".xml":   "application/xml",
	".js":    "application/javascript",
	".json":  "application/json",
	".wav":   "audio/wav",
	".au":    "audio/basic",
	".ulaw":  "audio/basic",
	".txt":   "text/plain",
}

func fileContentType(path string) string {
	ext := strings.ToLower(filepath.Ext(path))
	if t, ok := fileTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

func evalRoot(root string) (string, error) {
	real, err := filepath.EvalSymlinks(filepath.Clean(root))
	if err != nil {
		return "", err
	}
	return real, nil
}

// within reports whether path is root or below it.
func within(path, root string) bool {
	if path == root {
		return true
	}
	if !strings.HasSuffix(root, string(filepath.Separator)) {
		root += string(filepath.Separator)
	}
	return strings.HasPrefix(path, root)
}

// readFile serves a file:// URL. The query is ignored (a GET submit to a
// static file); so is a POST body. Files are read on every fetch (the
// operating system caches them).
func (f *Fetcher) readFile(u *url.URL, key string) (Resource, error) {
	fail := func(err error) (Resource, error) {
		return Resource{}, &vxml.FetchError{URL: key, Err: err}
	}
	if h := strings.ToLower(u.Host); h != "" && h != "localhost" {
		return fail(fmt.Errorf("%w: file URL with remote host %q", ErrDenied, u.Host))
	}
	if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
		return fail(errors.New("file URL has no absolute path"))
	}
	path := filepath.Clean(filepath.FromSlash(u.Path))
	if len(f.roots) > 0 {
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			return fail(fmt.Errorf("read file: %w", err))
		}
		ok := false
		for _, r := range f.roots {
			if within(real, r) {
				ok = true
				break
			}
		}
		if !ok {
			return fail(fmt.Errorf("%w: %s is outside the allowed file roots", ErrDenied, path))
		}
		path = real
	}
	fh, err := os.Open(path)
	if err != nil {
		return fail(fmt.Errorf("read file: %w", err))
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return fail(fmt.Errorf("read file: %w", err))
	}
	if !st.Mode().IsRegular() {
		return fail(fmt.Errorf("read file: %s is not a regular file", path))
	}
	limit := f.cfg.MaxResponseBytes
	if st.Size() > limit {
		return fail(fmt.Errorf("%w: %s has %d bytes, limit %d", ErrTooLarge, path, st.Size(), limit))
	}
	data, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return fail(fmt.Errorf("read file: %w", err))
	}
	if int64(len(data)) > limit {
		return fail(fmt.Errorf("%w: %s grew past %d bytes", ErrTooLarge, path, limit))
	}
	f.m.originBytes.Add(float64(len(data)))
	return Resource{Body: data, ContentType: fileContentType(path), URL: key, Status: http.StatusOK, Outcome: OutcomeFile}, nil
}
