package confmodel

import (
	"fmt"
	"sort"
	"strconv"
)

// PatternType is the form of a DID pattern.
type PatternType int

// The pattern forms, in matching precedence: exact beats range beats prefix.
const (
	// PatternExact matches one DNIS: `5551000`, `+15551000`.
	PatternExact PatternType = iota + 1
	// PatternRange matches a DNIS of the same length as its bounds whose value lies between
	// them, inclusive: `300-400`, `0100-0199`.
	PatternRange
	// PatternPrefix matches every DNIS that starts with the digits before the star,
	// including the prefix itself: `45*`; `*` alone matches every DNIS.
	PatternPrefix
)

// String names the form.
func (t PatternType) String() string {
	switch t {
	case PatternExact:
		return "exact"
	case PatternRange:
		return "range"
	case PatternPrefix:
		return "prefix"
	}
	return "invalid"
}

// Pattern limits.
const (
	// MaxPatternDigits is the longest digit string in a pattern (ITU-T E.164 allows 15 digits;
	// the margin leaves room for national prefixes and technical numbers).
	MaxPatternDigits = 32
	// maxRangeDigits bounds range bounds so they fit a uint64 with room to spare.
	maxRangeDigits = 18
)

// Pattern is a parsed DID pattern.
type Pattern struct {
	Type PatternType
	// Digits is the number for exact, the prefix (without the star) for prefix, and the lower
	// bound for range patterns. It may start with '+' except for ranges.
	Digits string
	// Lo and Hi are the inclusive numeric bounds of a range pattern; Len is the length of its
	// bounds (and of the DNIS it matches).
	Lo, Hi uint64
	Len    int
}

// ParsePattern parses a DID pattern. The forms are:
//
//   - exact: an optional '+' and 1 to 32 digits, e.g. `5551000`;
//   - range: two digit strings of the same length (at most 18) separated by '-', low <= high,
//     e.g. `300-400`; it matches a DNIS made of exactly that many digits whose value lies in
//     the range, so `300-400` matches `350` but not `0350` or `3500`, and `0100-0199` matches
//     `0150` but not `150`;
//   - prefix: an optional '+', 0 to 32 digits and a trailing '*', e.g. `45*`; it matches every
//     DNIS starting with those characters, the prefix itself included.
func ParsePattern(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, fmt.Errorf("empty DID pattern")
	}
	if s[len(s)-1] == '*' {
		p := s[:len(s)-1]
		if err := checkNumber(p, true, s); err != nil {
			return Pattern{}, err
		}
		return Pattern{Type: PatternPrefix, Digits: p}, nil
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			lo, hi := s[:i], s[i+1:]
			if len(lo) == 0 || len(hi) == 0 || len(lo) != len(hi) {
				return Pattern{}, fmt.Errorf("invalid DID range %q: want two numbers of the same length, like 300-400", s)
			}
			if len(lo) > maxRangeDigits {
				return Pattern{}, fmt.Errorf("invalid DID range %q: bounds longer than %d digits", s, maxRangeDigits)
			}
			if !allDigits(lo) || !allDigits(hi) {
				return Pattern{}, fmt.Errorf("invalid DID range %q: bounds must be digits only", s)
			}
			l, _ := strconv.ParseUint(lo, 10, 64)
			h, _ := strconv.ParseUint(hi, 10, 64)
			if l > h {
				return Pattern{}, fmt.Errorf("invalid DID range %q: low bound above high bound", s)
			}
			return Pattern{Type: PatternRange, Digits: lo, Lo: l, Hi: h, Len: len(lo)}, nil
		}
	}
	if err := checkNumber(s, false, s); err != nil {
		return Pattern{}, err
	}
	return Pattern{Type: PatternExact, Digits: s}, nil
}

// checkNumber validates an optional '+' followed by digits.
func checkNumber(p string, allowEmpty bool, whole string) error {
	d := p
	if len(d) > 0 && d[0] == '+' {
		d = d[1:]
		if d == "" && !allowEmpty {
			return fmt.Errorf("invalid DID pattern %q: no digits after '+'", whole)
		}
	}
	if d == "" && !allowEmpty {
		return fmt.Errorf("invalid DID pattern %q", whole)
	}
	if len(d) > MaxPatternDigits {
		return fmt.Errorf("invalid DID pattern %q: more than %d digits", whole, MaxPatternDigits)
	}
	if !allDigits(d) {
		return fmt.Errorf("invalid DID pattern %q: want digits like 5551000, a range like 300-400 or a prefix like 45*", whole)
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Matches reports whether the pattern matches dnis.
func (p Pattern) Matches(dnis string) bool {
	switch p.Type {
	case PatternExact:
		return dnis == p.Digits
	case PatternPrefix:
		return len(dnis) >= len(p.Digits) && dnis[:len(p.Digits)] == p.Digits
	case PatternRange:
		v, ok := rangeValue(dnis, p.Len)
		return ok && v >= p.Lo && v <= p.Hi
	}
	return false
}

// rangeValue returns the numeric value of dnis when it is n digits long.
func rangeValue(dnis string, n int) (uint64, bool) {
	if len(dnis) != n || n == 0 || n > maxRangeDigits {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(dnis); i++ {
		c := dnis[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// didIndex finds the DID of one tenant matching a DNIS: an exact map, sorted non-overlapping
// ranges per length (binary search), and a map of prefixes probed from the longest length
// present down to the shortest. Lookup is O(1) + O(log r) + O(number of distinct prefix
// lengths), with no allocation.
type didIndex struct {
	exact      map[string]*DID
	ranges     map[int][]didRange
	prefixes   map[string]*DID
	prefixLens []int // distinct prefix lengths, longest first
}

type didRange struct {
	lo, hi uint64
	did    *DID
}

func newDIDIndex() *didIndex {
	return &didIndex{exact: map[string]*DID{}, prefixes: map[string]*DID{}, ranges: map[int][]didRange{}}
}

// add inserts d with its parsed pattern; ranges are sorted and checked by finish.
func (x *didIndex) add(d *DID, p Pattern) {
	switch p.Type {
	case PatternExact:
		x.exact[p.Digits] = d
	case PatternPrefix:
		x.prefixes[p.Digits] = d
	case PatternRange:
		x.ranges[p.Len] = append(x.ranges[p.Len], didRange{lo: p.Lo, hi: p.Hi, did: d})
	}
}

// finish sorts the ranges and the prefix lengths and returns each pair of overlapping ranges.
func (x *didIndex) finish() [][2]*DID {
	var overlaps [][2]*DID
	for _, rs := range x.ranges {
		sort.Slice(rs, func(i, j int) bool {
			if rs[i].lo != rs[j].lo {
				return rs[i].lo < rs[j].lo
			}
			return rs[i].hi < rs[j].hi
		})
		// Report each range against the earlier range reaching furthest.
		far := 0
		for i := 1; i < len(rs); i++ {
			if rs[i].lo <= rs[far].hi {
				overlaps = append(overlaps, [2]*DID{rs[far].did, rs[i].did})
			}
			if rs[i].hi > rs[far].hi {
				far = i
			}
		}
	}
	lens := map[int]bool{}
	for p := range x.prefixes {
		lens[len(p)] = true
	}
	x.prefixLens = x.prefixLens[:0]
	for l := range lens {
		x.prefixLens = append(x.prefixLens, l)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(x.prefixLens)))
	return overlaps
}

// lookup returns the DID matching dnis: exact beats range beats the longest prefix.
func (x *didIndex) lookup(dnis string) *DID {
	if d, ok := x.exact[dnis]; ok {
		return d
	}
	if rs := x.ranges[len(dnis)]; len(rs) > 0 {
		if v, ok := rangeValue(dnis, len(dnis)); ok {
			// First range whose high bound is >= v; ranges do not overlap, so it is the only
			// candidate.
			i := sort.Search(len(rs), func(i int) bool { return rs[i].hi >= v })
			if i < len(rs) && rs[i].lo <= v {
				return rs[i].did
			}
		}
	}
	for _, l := range x.prefixLens {
		if l > len(dnis) {
			continue
		}
		if d, ok := x.prefixes[dnis[:l]]; ok {
			return d
		}
	}
	return nil
}
