package rs

import (
	"encoding/xml"
	"time"

	"github.com/opengvp/gvp/internal/billing"
	"github.com/opengvp/gvp/internal/cdrstore"
)

// CDRList answers the /ems-rs/{RT,HIST}/CDRs/{RM,MCP}/details reports. In JSON each CDR has
// the fields of the broker record (internal/billing); in XML it is a <cdr> element with one
// child per field, named in GVP's kebab case (record-id, gvp-session-id, tenant-id, ...).
type CDRList struct {
	Page     int           `json:"page"`
	PageSize int           `json:"page_size"`
	Total    int           `json:"total"`
	CDRs     []billing.CDR `json:"cdrs"`
}

func newCDRList(p cdrstore.CDRPage) CDRList {
	l := CDRList{Page: p.Page, PageSize: p.PageSize, Total: p.Total, CDRs: p.CDRs}
	if l.CDRs == nil {
		l.CDRs = []billing.CDR{}
	}
	return l
}

// cdrXML is the XML form of one CDR. Empty fields are left out; times are RFC 3339 UTC.
type cdrXML struct {
	RecordID      string `xml:"record-id"`
	SessionID     string `xml:"gvp-session-id"`
	Component     string `xml:"component"`
	ComponentName string `xml:"component-name,omitempty"`
	State         string `xml:"state"`
	TenantID      string `xml:"tenant-id,omitempty"`
	TenantName    string `xml:"tenant-name,omitempty"`
	Profile       string `xml:"ivr-profile,omitempty"`
	ServiceType   string `xml:"service-type,omitempty"`
	DNIS          string `xml:"dnis,omitempty"`
	ANI           string `xml:"ani,omitempty"`
	LocalURI      string `xml:"local-uri,omitempty"`
	RemoteURI     string `xml:"remote-uri,omitempty"`
	CallID        string `xml:"call-id,omitempty"`
	MCP           string `xml:"mcp,omitempty"`
	Start         string `xml:"start"`
	Answer        string `xml:"answer,omitempty"`
	End           string `xml:"end,omitempty"`
	DurationMS    int64  `xml:"duration-ms"`
	EndReason     string `xml:"end-reason,omitempty"`
	EndDetail     string `xml:"end-detail,omitempty"`
	EndCode       int    `xml:"end-code,omitempty"`
}

func xmlTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func toCDRXML(c billing.CDR) cdrXML {
	return cdrXML{RecordID: c.ID, SessionID: c.SessionID, Component: string(c.Component), ComponentName: c.ComponentName,
		State: string(c.State), TenantID: c.TenantID, TenantName: c.TenantName, Profile: c.Profile,
		ServiceType: c.ServiceType, DNIS: c.DNIS, ANI: c.ANI, LocalURI: c.LocalURI, RemoteURI: c.RemoteURI,
		CallID: c.CallID, MCP: c.MCP, Start: xmlTime(c.Start), Answer: xmlTime(c.Answer), End: xmlTime(c.End),
		DurationMS: c.Duration.Milliseconds(), EndReason: string(c.EndReason), EndDetail: c.EndDetail, EndCode: c.EndCode}
}

// MarshalXML renders <cdrs page=".." page-size=".." total=".."><cdr>...</cdr></cdrs>.
func (l CDRList) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	v := struct {
		XMLName  xml.Name `xml:"cdrs"`
		Page     int      `xml:"page,attr"`
		PageSize int      `xml:"page-size,attr"`
		Total    int      `xml:"total,attr"`
		CDRs     []cdrXML `xml:"cdr"`
	}{Page: l.Page, PageSize: l.PageSize, Total: l.Total}
	for _, c := range l.CDRs {
		v.CDRs = append(v.CDRs, toCDRXML(c))
	}
	return e.Encode(v)
}

// MarshalXML renders <session id=".."><event record-id=".." time=".." kind="..">detail</event></session>.
func (s SessionEvents) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	type eventXML struct {
		RecordID string `xml:"record-id,attr"`
		Time     string `xml:"time,attr"`
		Kind     string `xml:"kind,attr"`
		Detail   string `xml:",chardata"`
	}
	v := struct {
		XMLName   xml.Name   `xml:"session"`
		SessionID string     `xml:"id,attr"`
		Events    []eventXML `xml:"event"`
	}{SessionID: s.SessionID}
	for _, ev := range s.Events {
		v.Events = append(v.Events, eventXML{RecordID: ev.ID, Time: xmlTime(ev.Time), Kind: ev.Kind, Detail: ev.Detail})
	}
	return e.Encode(v)
}
