package config

import "path/filepath"

// Database drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Database selects a role's SQL store.
type Database struct {
	// Driver is "sqlite" (embedded, the default) or "postgres".
	Driver string `mapstructure:"driver"`
	// DSN is the PostgreSQL connection string, or the SQLite file path; empty with sqlite means
	// <data_dir>/<role>.db.
	DSN string `mapstructure:"dsn"`
}

// Validate checks the section; prefix is its key (e.g. "rs.database").
func (d Database) Validate(prefix string) error {
	switch d.Driver {
	case DriverSQLite:
	case DriverPostgres:
		if d.DSN == "" {
			return Errorf(prefix+".dsn", "is required with driver postgres")
		}
	default:
		return Errorf(prefix+".driver", "unknown driver %q (want sqlite or postgres)", d.Driver)
	}
	return nil
}

// Resolve returns the DSN to open: for sqlite without a DSN, the file name in dataDir.
func (d Database) Resolve(dataDir, file string) string {
	if d.Driver == DriverSQLite && d.DSN == "" {
		return filepath.Join(dataDir, file)
	}
	return d.DSN
}
