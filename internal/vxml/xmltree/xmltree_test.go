package xmltree

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTree(t *testing.T) {
	n, err := Parse([]byte(`<?xml version="1.0"?><!-- c --><a x="1"><b>hi <![CDATA[<there>]]></b>tail</a>`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != "a" || n.AttrOr("x", "") != "1" || len(n.Elements()) != 1 || n.InnerText() != "hi <there>tail" {
		t.Fatalf("tree %+v", n)
	}
}

func TestParseLimits(t *testing.T) {
	tests := []struct {
		src string
		lim Limits
	}{
		{strings.Repeat("<a>", 10) + strings.Repeat("</a>", 10), Limits{MaxDepth: 5}},
		{"<a>" + strings.Repeat("<b/>", 10) + "</a>", Limits{MaxNodes: 5}},
		{"<a>" + strings.Repeat(" ", 100) + "</a>", Limits{MaxBytes: 50}},
	}
	for _, tt := range tests {
		if _, err := Parse([]byte(tt.src), tt.lim); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%.20q: err = %v", tt.src, err)
		}
	}
	for _, bad := range []string{"", "<a>", "<a></b>", "<a/><b/>", "text<a/>", `<?xml version="1.0" encoding="EBCDIC"?><a/>`} {
		if _, err := Parse([]byte(bad), Limits{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`<a x="1"><b>t</b></a>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Parse(data, Limits{MaxDepth: 32, MaxNodes: 1000})
		if err == nil && n == nil {
			t.Fatal("nil root without error")
		}
	})
}
