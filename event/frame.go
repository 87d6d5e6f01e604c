package event

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Frame types sent to the browser (docs/contract.md "Browser ↔ callpop").
const (
	FrameHello   = "hello"
	FrameCall    = "call"
	FrameHistory = "history"
	FrameSeen    = "seen"
)

// Reasons carried by synthetic call frames.
const (
	// ReasonAnsweredElsewhere closes a ringing leg when another manager
	// answered the same call.
	ReasonAnsweredElsewhere = "answered_elsewhere"
	// ReasonHistory closes a leg that was still open when the call's history
	// record arrived (its terminal event was lost).
	ReasonHistory = "history"
)

// CallFrame is a "call" frame: one event of one call for one user. It is
// also the call object listed in hello's "active".
type CallFrame struct {
	Type          string   `json:"type"` // first: WithID inserts the id after it
	ID            string   `json:"id,omitempty"`
	Event         Type     `json:"event"`
	CallID        string   `json:"callid"`
	Phone         string   `json:"phone"`
	User          string   `json:"user"`
	Direction     string   `json:"direction"`
	Diversion     string   `json:"diversion,omitempty"`
	GroupRealName string   `json:"groupRealName,omitempty"`
	Ext           string   `json:"ext,omitempty"`
	Telnum        string   `json:"telnum,omitempty"`
	SecondCallID  string   `json:"second_callid,omitempty"`
	Contact       *Contact `json:"contact,omitempty"`
	Reason        string   `json:"reason,omitempty"`
	AnsweredBy    string   `json:"answered_by,omitempty"`
	// AnsweredByName is AnsweredBy's real name, when known.
	AnsweredByName string `json:"answered_by_name,omitempty"`
	// Started is when this leg first appeared, so a card opened mid-call
	// shows the right ring or talk timer.
	Started time.Time `json:"started"`
	// Answered is when this leg was accepted, zero before.
	Answered *time.Time `json:"answered,omitempty"`
	At       time.Time  `json:"at"`
}

// HistoryFrame is a "history" frame: a call's record for one user.
type HistoryFrame struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	Record
}

// SeenFrame tells every tab of a user that a missed call was marked seen.
type SeenFrame struct {
	Type   string `json:"type"`
	ID     string `json:"id,omitempty"`
	CallID string `json:"callid"`
}

// Hello is the first frame of every session.
type Hello struct {
	Type      string      `json:"type"`
	User      string      `json:"user"`
	Active    []CallFrame `json:"active"`
	Recovered *bool       `json:"recovered,omitempty"`
	// Last is the id of the newest event reflected in Active; a client may
	// resume from it.
	Last string `json:"last,omitempty"`
}

// Ack is the one client → server frame: a card for event ID is on screen.
// Unstyled is set when the card is there without the widget's styles (the
// page's Content-Security-Policy blocked them): on screen, but barely.
type Ack struct {
	Type     string `json:"type"`
	ID       string `json:"id"`
	Unstyled bool   `json:"unstyled,omitempty"`
}

// WithID returns payload, an encoded frame whose first member is "type" and
// which has no "id", with "id":id inserted after "type". The broker assigns
// ids when it appends to a user's log, after the frame was encoded once.
func WithID(payload []byte, id string) []byte {
	i := endOfType(payload)
	if i < 0 {
		return payload
	}
	quoted, _ := json.Marshal(id) // JSON's quoting, not Go's: ids are digits, but stay safe
	out := make([]byte, 0, len(payload)+len(quoted)+6)
	out = append(out, payload[:i+1]...)
	out = append(out, `"id":`...)
	out = append(out, quoted...)
	out = append(out, ',')
	return append(out, payload[i+1:]...)
}

// Encode marshals a frame. Frames are plain structs of strings, numbers and
// times, so it cannot fail; a failure is a programming error.
func Encode(frame any) []byte {
	b, err := json.Marshal(frame)
	if err != nil {
		panic("event: encode frame: " + err.Error())
	}
	return b
}

// endOfType returns the index of the comma that ends a payload's first
// member, "type", or -1. The type's value is one of the Frame* constants in
// practice (the Redis broker's Lua splice relies on that: it takes the first
// comma), but the codec does not: it skips the string, escapes and all.
func endOfType(p []byte) int {
	const prefix = `{"type":"`
	if !bytes.HasPrefix(p, []byte(prefix)) {
		return bytes.IndexByte(p, ',')
	}
	for i := len(prefix); i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++ // the escaped character
		case '"':
			if i+1 < len(p) && p[i+1] == ',' {
				return i + 1
			}
			return -1
		}
	}
	return -1
}

// ID is a position in a user's event log: "<ms>-<seq>", the form of a Redis
// stream id, used by both brokers so a client can resume on any node.
type ID struct {
	MS, Seq uint64
}

// ParseID parses "<ms>-<seq>". The zero ID and ok=false come back for
// anything else.
func ParseID(s string) (ID, bool) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		return ID{}, false
	}
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	if err1 != nil || err2 != nil {
		return ID{}, false
	}
	return ID{a, b}, true
}

func (id ID) String() string {
	return strconv.FormatUint(id.MS, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// Less orders ids in log order.
func (id ID) Less(o ID) bool {
	return id.MS < o.MS || (id.MS == o.MS && id.Seq < o.Seq)
}

// IsZero reports whether id is the zero ID, before any event.
func (id ID) IsZero() bool { return id == ID{} }

// Next returns the id that follows id at time now (milliseconds), as Redis
// assigns stream ids: the clock, or the same millisecond with seq+1 when the
// clock has not moved on.
func (id ID) Next(nowMS uint64) ID {
	if nowMS > id.MS {
		return ID{MS: nowMS}
	}
	return ID{MS: id.MS, Seq: id.Seq + 1}
}
