package caller

import (
	"reflect"
	"testing"
	"time"
)

func TestParseDTMF(t *testing.T) {
	got, err := ParseDTMF("2@2.5s, 1@2s,#@3s,a@0s")
	if err != nil {
		t.Fatal(err)
	}
	want := []TimedDigit{{'A', 0}, {'1', 2 * time.Second}, {'2', 2500 * time.Millisecond}, {'#', 3 * time.Second}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if d, err := ParseDTMF(""); err != nil || d != nil {
		t.Fatalf("empty: %v %v", d, err)
	}
	for _, bad := range []string{"1", "12@1s", "x@1s", "1@soon", "1@-1s", ","} {
		if _, err := ParseDTMF(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	v := make([]float64, 100)
	for i := range v {
		v[i] = float64(i + 1)
	}
	for _, tc := range []struct{ p, want float64 }{{50, 50}, {95, 95}, {99, 99}, {100, 100}} {
		if got := pct(v, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if pct(nil, 50) != 0 || pct([]float64{7}, 99) != 7 {
		t.Fatal("edge cases")
	}
}
