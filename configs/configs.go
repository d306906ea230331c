// Package configs embeds the configuration files that ship inside the binary: the full
// reference (gvp.yaml) and the local all-in-one preset (local.yaml).
package configs

import _ "embed"

// Reference is configs/gvp.yaml: every key with its default.
//
//go:embed gvp.yaml
var Reference []byte

// LocalPreset is configs/local.yaml: the settings `gvp local` applies over the defaults.
//
//go:embed local.yaml
var LocalPreset []byte
