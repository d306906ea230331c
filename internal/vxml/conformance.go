package vxml

import (
	"fmt"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The conformance suite in testdata/conformance has one document per assertion of the
// VoiceXML 2.0/2.1 Recommendations; each declares itself in comments:
//
//	<!-- assert: what the document checks -->
//	<!-- input: the caller's script: keys, T (silence until a timeout), H (hang up) -->
//	<!-- expect: pass | error EVENT | REASON -->
//
// The interpreter's own tests run it in memory; the mcp's run it over real calls.

var conformanceHeader = regexp.MustCompile(`<!--\s*(assert|input|expect):\s*(.*?)\s*-->`)

// ConformanceCase is one document of the conformance suite.
type ConformanceCase struct {
	// Name is the file name; Assert, Input and Expect come from its header comments (Expect
	// defaults to "pass").
	Name, Assert, Input, Expect string
}

// LoadConformance reads the suite in dir, skipping helper documents (names with "--").
func LoadConformance(dir string) ([]ConformanceCase, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.vxml"))
	if err != nil {
		return nil, err
	}
	var out []ConformanceCase
	for _, p := range files {
		base := filepath.Base(p)
		if strings.Contains(base, "--") {
			continue // helper document of another case
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		c := ConformanceCase{Name: base, Expect: "pass"}
		for _, m := range conformanceHeader.FindAllStringSubmatch(string(b), -1) {
			switch m[1] {
			case "assert":
				c.Assert = m[2]
			case "input":
				c.Input = m[2]
			case "expect":
				c.Expect = m[2]
			}
		}
		if c.Assert == "" {
			return nil, fmt.Errorf("%s: missing <!-- assert: ... --> header", base)
		}
		out = append(out, c)
	}
	return out, nil
}

// ConformanceContentType is the content type the suite's files are served with, by name.
func ConformanceContentType(name string) string {
	switch filepath.Ext(name) {
	case ".js":
		return "application/ecmascript"
	case ".grxml":
		return "application/srgs+xml"
	case ".abnf":
		return "application/srgs"
	case ".xml":
		return "application/xml"
	}
	return "application/voicexml+xml"
}

// ConformanceEcho is the suite's echo resource, served by the test fetchers rather than from a
// file: a document submits to "echo.vxml?expect=..." and gets back a document that exits with
// 'pass' when the expect parameter equals ConformanceSubmission of what was submitted, else
// with 'fail: got ...' — so the submitting document decides what must arrive.
const ConformanceEcho = "echo.vxml"

// ConformanceSubmission describes a submission for the echo resource: the method, the enctype
// (the request's media type for a POST, "-" for a GET) and each submitted value in order, as
// name=value or, for a file part, name:media-type.
func ConformanceSubmission(method, enctype string, values []string) string {
	if method != "POST" {
		enctype = "-"
	}
	return strings.Join(append([]string{method, enctype}, values...), " ")
}

// ConformanceEchoDocument is the echo resource's answer for the expected and the received
// submission.
func ConformanceEchoDocument(expect, got string) []byte {
	result := "pass"
	if expect != got {
		result = "fail: got " + got
	}
	return []byte(`<?xml version="1.0"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml"><form><block><exit expr="` +
		html.EscapeString(strconv.Quote(result)) + `"/></block></form></vxml>`)
}

// Check compares a result with a conformance expectation: "pass" (exit with the value
// 'pass'), "error NAME" (that uncaught error event) or a Reason.
func (r *Result) Check(expect string) error {
	switch {
	case expect == "pass":
		if r.Reason != ReasonExit || r.Value != "pass" {
			return fmt.Errorf("got reason=%s value=%v event=%s %s err=%v", r.Reason, r.Value, r.Event, r.Message, r.Err)
		}
	case strings.HasPrefix(expect, "error "):
		want := strings.TrimPrefix(expect, "error ")
		if r.Reason != ReasonError || r.Event != want {
			return fmt.Errorf("got reason=%s event=%q (%s) value=%v err=%v, want error %s", r.Reason, r.Event, r.Message, r.Value, r.Err, want)
		}
	default:
		if string(r.Reason) != expect {
			return fmt.Errorf("got reason=%s value=%v event=%s %s, want %s", r.Reason, r.Value, r.Event, r.Message, expect)
		}
	}
	return nil
}
