package sqlutil

import "testing"

func TestDollarPlaceholders(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1":                              "SELECT 1",
		"INSERT INTO t (a, b) VALUES (?, ?)":    "INSERT INTO t (a, b) VALUES ($1, $2)",
		"UPDATE t SET a = ? WHERE id = ? AND ?": "UPDATE t SET a = $1 WHERE id = $2 AND $3",
	} {
		if got := DollarPlaceholders(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}
