package configsrv

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
)

// helloWorld is the bundled demo application, written to <data_dir>/apps/hello.vxml by the
// demo seed and served to the local mcp as a file URL.
//
//go:embed testdata/hello.vxml
var helloWorld []byte

// writeDemoApp writes the demo application and returns its file URL.
func writeDemoApp(dataDir string) (string, error) {
	dir, err := filepath.Abs(filepath.Join(dataDir, "apps"))
	if err != nil {
		return "", fmt.Errorf("demo app folder: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("demo app folder: %w", err)
	}
	p := filepath.Join(dir, "hello.vxml")
	if err := os.WriteFile(p, helloWorld, 0o644); err != nil {
		return "", fmt.Errorf("write demo app: %w", err)
	}
	return "file://" + p, nil
}
