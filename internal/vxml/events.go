package vxml

import (
	"fmt"
	"strings"
)

// Event names thrown by the interpreter.
const (
	EventNoInput         = "noinput"
	EventNoMatch         = "nomatch"
	EventHelp            = "help"
	EventCancel          = "cancel"
	EventExit            = "exit"
	EventHangup          = "connection.disconnect.hangup"
	EventTransferred     = "connection.disconnect.transfer"
	EventBadFetch        = "error.badfetch"
	EventSemantic        = "error.semantic"
	EventNoAuthorization = "error.noauthorization"
	EventUnsupported     = "error.unsupported"
	EventObjectType      = "error.unsupported.objecttype"
	EventConnection      = "error.connection"
)

// Event is a VoiceXML event. It implements error so it can travel through
// the interpreter's control flow and be returned by platform methods
// (Transfer returning an error.connection.* Event, for instance).
type Event struct {
	Name    string
	Message string
}

func (e *Event) Error() string {
	if e.Message == "" {
		return e.Name
	}
	return e.Name + ": " + e.Message
}

func semanticf(format string, a ...any) *Event {
	return &Event{Name: EventSemantic, Message: fmt.Sprintf(format, a...)}
}

func badfetchf(format string, a ...any) *Event {
	return &Event{Name: EventBadFetch, Message: fmt.Sprintf(format, a...)}
}

// eventMatches reports whether a catch for name catches event: name must
// equal event or be a prefix of it ending at a '.' boundary ("error"
// catches "error.badfetch.http.404"; "error.bad" catches nothing).
// A trailing '.' in name is ignored.
func eventMatches(name, event string) bool {
	name = strings.TrimSuffix(name, ".")
	if name == "" || name == "." {
		return true
	}
	if !strings.HasPrefix(event, name) {
		return false
	}
	return len(event) == len(name) || event[len(name)] == '.'
}
