// Package event holds callpop's domain: the PBX's call events and call records,
// the frames a browser receives, the per-call state machine that turns one into
// the other, and the interfaces the webhook, the hub and the brokers meet at.
// It imports nothing but the standard library.
package event

import (
	"context"
	"strings"
	"time"
)

// Type is the kind of a PBX call event (docs/pbx-api.md, "event").
type Type string

// The PBX's event types.
const (
	Incoming    Type = "INCOMING"
	Accepted    Type = "ACCEPTED"
	Completed   Type = "COMPLETED"
	Cancelled   Type = "CANCELLED"
	Outgoing    Type = "OUTGOING"
	Transferred Type = "TRANSFERRED"
)

var types = []Type{Incoming, Accepted, Completed, Cancelled, Outgoing, Transferred}

// ParseType matches s case-insensitively against the event types.
func ParseType(s string) (Type, bool) {
	for _, t := range types {
		if strings.EqualFold(s, string(t)) {
			return t, true
		}
	}
	return "", false
}

// Terminal reports whether t ends a call leg.
func (t Type) Terminal() bool { return t == Completed || t == Cancelled || t == Transferred }

// Direction of a call.
const (
	DirIn  = "in"
	DirOut = "out"
)

// ParseDirection matches s case-insensitively against "in" and "out".
func ParseDirection(s string) (string, bool) {
	switch {
	case strings.EqualFold(s, DirIn):
		return DirIn, true
	case strings.EqualFold(s, DirOut):
		return DirOut, true
	}
	return "", false
}

// Status is how a call ended, from the history record (docs/pbx-api.md, "history").
type Status string

// The PBX's call statuses.
const (
	Success      Status = "Success"
	Missed       Status = "Missed"
	Cancel       Status = "Cancel"
	Busy         Status = "Busy"
	NotAvailable Status = "NotAvailable"
	NotAllowed   Status = "NotAllowed"
	NotFound     Status = "NotFound"
)

var statuses = []Status{Success, Missed, Cancel, Busy, NotAvailable, NotAllowed, NotFound}

// ParseStatus matches s case-insensitively (the PBX sends both "missed" and "Missed").
func ParseStatus(s string) (Status, bool) {
	for _, st := range statuses {
		if strings.EqualFold(s, string(st)) {
			return st, true
		}
	}
	return "", false
}

// Contact is what the directory knows of a phone number.
type Contact struct {
	Name string `json:"name,omitempty"`
	// Responsible is the responsible manager's PBX login.
	Responsible string `json:"responsible,omitempty"`
	// ResponsibleName is that manager's real name when the PBX's
	// employees list knows it (Names); filled by the webhook, not the
	// directory.
	ResponsibleName string `json:"responsible_name,omitempty"`
}

// Event is one validated PBX call event.
type Event struct {
	Type          Type
	CallID        string
	Phone         string
	User          string // as the PBX sent it, e.g. "andy@acme"
	Direction     string // "in", "out", or "" when the PBX left it out
	Diversion     string
	GroupRealName string
	Ext           string
	Telnum        string
	SecondCallID  string
	Contact       *Contact // directory enrichment, nil when unknown
	// UserName is User's real name (Names), "" when unknown; an ACCEPTED's
	// becomes answered_by_name of the legs it closes.
	UserName string
	At       time.Time
}

// Record is one call's history record (docs/pbx-api.md, "history"), kept per user.
type Record struct {
	CallID        string    `json:"callid"`
	User          string    `json:"user"`
	Phone         string    `json:"phone"`
	Direction     string    `json:"direction"`
	Status        Status    `json:"status"`
	Start         time.Time `json:"start"`
	Duration      int       `json:"duration"`
	Link          string    `json:"link,omitempty"`
	Ext           string    `json:"ext,omitempty"`
	GroupRealName string    `json:"groupRealName,omitempty"`
	Telnum        string    `json:"telnum,omitempty"`
	Diversion     string    `json:"diversion,omitempty"`
	Rating        string    `json:"rating,omitempty"`
	Contact       *Contact  `json:"contact,omitempty"`
	// Seen: the user marked this missed call seen (per user, in their
	// recent calls only).
	Seen bool `json:"seen,omitempty"`
}

// Missed reports whether the record is an incoming call nobody took, the
// kind that needs a call back.
func (r Record) Missed() bool { return r.Direction == DirIn && r.Status != Success }

// UnseenMissed reports whether the record is a missed call its user has not
// marked seen: the calls the widget's badge counts.
func (r Record) UnseenMissed() bool { return r.Missed() && !r.Seen }

// Rating is the client's post-call score (cmd=rating, docs/pbx-api.md).
type Rating struct {
	CallID string
	User   string
	Phone  string
	Value  string
}

// UserKey is the routing key of a PBX user or a token subject: lower case,
// without an "@domain" suffix, so "Andy@acme" and "andy" meet.
func UserKey(user string) string {
	if i := strings.IndexByte(user, '@'); i >= 0 {
		user = user[:i]
	}
	return strings.ToLower(strings.TrimSpace(user))
}

// IsPerson reports whether a user key names a manager rather than the switch
// itself ("pbx") or a group login ("g_<uuid>").
func IsPerson(key string) bool {
	return key != "" && key != "pbx" && !strings.HasPrefix(key, "g_")
}

// Names maps a PBX login to the employee's real name, "" when unknown. It
// must not block: the webhook asks it on every call event.
type Names interface {
	RealName(login string) string
}

// Directory answers who is behind a phone number. Lookup returns ok=false
// for an unknown number; it must honour ctx's deadline, since the PBX holds
// the ringing call while it waits.
type Directory interface {
	Lookup(ctx context.Context, phone string) (c Contact, ok bool, err error)
}
