// Package sqlutil holds what the SQL stores (configuration, billing records) share across
// their SQLite and PostgreSQL backends.
package sqlutil

import (
	"strconv"
	"strings"
)

// DollarPlaceholders rewrites the `?` placeholders of a query written for SQLite into
// PostgreSQL's `$1, $2, ...`. Queries must not contain a literal `?` (none of ours do).
func DollarPlaceholders(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
