package event

import (
	"slices"
	"strings"
	"time"
)

// LegState is where one user's leg of a call stands.
type LegState string

// Leg states. A leg only moves forward: ringing → talking → closed.
const (
	Ringing LegState = "ringing"
	Talking LegState = "talking"
	Closed  LegState = "closed"
)

func (s LegState) rank() int {
	switch s {
	case Ringing:
		return 0
	case Talking:
		return 1
	}
	return 2
}

// How long call state is kept.
const (
	// DefaultRecordTTL is how long a call's record (its legs, tombstones
	// and history flags) is kept after its last change. It is also the
	// window in which a repeated webhook changes nothing.
	DefaultRecordTTL = 24 * time.Hour
	// RingingTTL is how long a ringing leg is shown without news: a lost
	// terminal event must not leave a popup forever. Calls ring for
	// seconds; queues hold callers for minutes.
	RingingTTL = 15 * time.Minute
	// TalkingTTL is the same for an answered call; conversations run long.
	TalkingTTL = 4 * time.Hour
	// GroupRaceWindow: an INCOMING that arrives this soon after another
	// manager ACCEPTED the same call is the group call's own race
	// (docs/pbx-api.md, field note 1), not a new ring, and opens no popup.
	GroupRaceWindow = 3 * time.Second
)

// Leg is one user's part in a call.
type Leg struct {
	State LegState  `json:"state"`
	Last  CallFrame `json:"last"` // the user's last frame on this call, without id
}

// Expired reports whether an open leg has had no news for too long to be
// shown as active at now.
func (l *Leg) Expired(now time.Time) bool { return l.Last.Stale(now) }

// Open reports whether the leg shows a popup at now.
func (l *Leg) Open(now time.Time) bool { return l.State != Closed && !l.Expired(now) }

// CallState is the shared state of one callid: every user's leg, and what of
// its history has been delivered. Brokers store it whole and update it
// atomically; the methods below are the state machine and are pure.
type CallState struct {
	CallID string          `json:"callid"`
	Legs   map[string]*Leg `json:"legs,omitempty"` // by user key
	// Record is the call's history record once it arrived.
	Record *Record `json:"record,omitempty"`
	// RecordedFor lists the users the record was delivered to.
	RecordedFor []string `json:"recorded_for,omitempty"`
	// Rating arrived before the record, to be attached to it.
	Rating string `json:"rating,omitempty"`
	// SeenBy lists the users who marked the missed call seen.
	SeenBy []string `json:"seen_by,omitempty"`
	// AcceptedAt/AcceptedBy: the last leg answered, for GroupRaceWindow.
	AcceptedAt time.Time `json:"accepted_at,omitzero"`
	AcceptedBy string    `json:"accepted_by,omitempty"`
	// Scope is the call's tenant prefix (tenant.Key(id, "")), "" for the
	// default tenant: every Out's UserKey starts with it, so the same login
	// in two tenants never meets. Legs, RecordedFor, SeenBy and AcceptedBy
	// hold the unscoped keys, as frames show them.
	Scope string `json:"scope,omitempty"`
}

// Out is one consequence of a state change: a frame for a user (appended to
// their log and published) and/or a record to keep in their recent calls.
type Out struct {
	UserKey string // user key
	Payload []byte // encoded frame without id; nil for none
	Record  *Record
}

// ActiveChange tells the broker how a user's set of active calls changed.
type ActiveChange struct {
	UserKey string
	Leg     *Leg // nil: no longer active
}

// ApplyEvent moves the record by one PBX event and returns the frames to send.
// A repeated or late event (one that would move a leg backwards, or reopen a
// closed one) returns nothing.
func (r *CallState) ApplyEvent(ev Event) []Out {
	if r.Legs == nil {
		r.Legs = map[string]*Leg{}
	}
	key := UserKey(ev.User)
	leg := r.Legs[key]
	frame := r.frame(leg, ev, key)
	var outs []Out

	switch ev.Type {
	case Incoming, Outgoing:
		if leg != nil || r.Record != nil {
			return nil // repeated, or late for a leg or call already over
		}
		if ev.Type == Incoming && r.AcceptedBy != "" && r.AcceptedBy != key &&
			ev.At.Sub(r.AcceptedAt) < GroupRaceWindow {
			r.Legs[key] = &Leg{State: Closed, Last: frame}
			return nil
		}
		r.Legs[key] = &Leg{State: Ringing, Last: frame}
	case Accepted:
		if (leg != nil && leg.State.rank() >= Talking.rank()) || r.Record != nil {
			return nil
		}
		at := ev.At
		frame.Answered = &at
		r.Legs[key] = &Leg{State: Talking, Last: frame}
		r.AcceptedAt, r.AcceptedBy = ev.At, key
		outs = r.closeRinging(key, ev.UserName, ev.At)
	default: // terminal
		if leg != nil && leg.State == Closed {
			return nil
		}
		r.Legs[key] = &Leg{State: Closed, Last: frame}
	}
	return r.scoped(append([]Out{{UserKey: key, Payload: Encode(frame)}}, outs...))
}

// scoped prefixes every Out's user key with the call's Scope.
func (r *CallState) scoped(outs []Out) []Out {
	if r.Scope != "" {
		for i := range outs {
			outs[i].UserKey = r.Scope + outs[i].UserKey
		}
	}
	return outs
}

// closeRinging closes every other user's ringing leg: answeredBy (whose
// real name is name, "" when unknown) took the call.
func (r *CallState) closeRinging(answeredBy, name string, at time.Time) []Out {
	var outs []Out
	for _, u := range r.users() {
		leg := r.Legs[u]
		if u == answeredBy || leg.State != Ringing {
			continue
		}
		f := leg.Last
		f.Event, f.Reason, f.AnsweredBy, f.AnsweredByName, f.At = Cancelled, ReasonAnsweredElsewhere, answeredBy, name, at
		leg.State, leg.Last = Closed, f
		outs = append(outs, Out{UserKey: u, Payload: Encode(f)})
	}
	return outs
}

// frame builds the user's frame for ev, keeping what earlier events of the
// leg said when this one leaves it out (department, contact, direction).
func (r *CallState) frame(leg *Leg, ev Event, key string) CallFrame {
	var f CallFrame
	if leg != nil {
		f = leg.Last
		f.Reason, f.AnsweredBy, f.AnsweredByName = "", "", ""
	} else {
		f.Started = ev.At
	}
	f.Type, f.Event, f.CallID, f.User, f.At = FrameCall, ev.Type, ev.CallID, key, ev.At
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&f.Phone, ev.Phone)
	set(&f.Diversion, ev.Diversion)
	set(&f.GroupRealName, ev.GroupRealName)
	set(&f.Ext, ev.Ext)
	set(&f.Telnum, ev.Telnum)
	set(&f.SecondCallID, ev.SecondCallID)
	if ev.Contact != nil {
		f.Contact = ev.Contact
	}
	switch {
	case ev.Direction != "":
		f.Direction = ev.Direction
	case f.Direction != "": // the leg already knows
	case ev.Type == Outgoing:
		f.Direction = DirOut
	default:
		f.Direction = DirIn
	}
	return f
}

// ApplyHistory records the call's history: it closes every leg still open
// (a second chance for lost terminal events) and delivers the record to its
// user, or, when that user is not a person, to every user who had a leg.
// A repeated record for the same user changes nothing.
func (r *CallState) ApplyHistory(rec Record, now time.Time) []Out {
	if r.Legs == nil {
		r.Legs = map[string]*Leg{}
	}
	if rec.Rating == "" {
		rec.Rating = r.Rating
	}
	if rec.Contact == nil {
		for _, u := range r.users() {
			if c := r.Legs[u].Last.Contact; c != nil {
				rec.Contact = c
				break
			}
		}
	}
	r.Record = &rec
	var outs []Out
	for _, u := range r.users() {
		leg := r.Legs[u]
		if leg.State == Closed {
			continue
		}
		f := leg.Last
		f.Event, f.Reason, f.AnsweredBy, f.AnsweredByName, f.At = Cancelled, ReasonHistory, "", "", now
		if leg.State == Talking {
			f.Event = Completed
		}
		leg.State, leg.Last = Closed, f
		outs = append(outs, Out{UserKey: u, Payload: Encode(f)})
	}

	var to []string
	if key := UserKey(rec.User); IsPerson(key) {
		to = []string{key}
	} else {
		to = r.users()
	}
	for _, u := range to {
		if slices.Contains(r.RecordedFor, u) {
			continue
		}
		r.RecordedFor = append(r.RecordedFor, u)
		rc := rec
		outs = append(outs, Out{UserKey: u, Record: &rc,
			Payload: Encode(HistoryFrame{Type: FrameHistory, Record: rc})})
	}
	return r.scoped(outs)
}

// ApplyRating attaches a post-call rating to the call's record: kept for a
// record still to come, or updated in the users' recent calls.
func (r *CallState) ApplyRating(value string) []Out {
	if r.Record == nil {
		r.Rating = value
		return nil
	}
	if r.Record.Rating == value {
		return nil
	}
	r.Record.Rating = value
	var outs []Out
	for _, u := range r.RecordedFor {
		rc := r.recordFor(u)
		outs = append(outs, Out{UserKey: u, Record: &rc})
	}
	return r.scoped(outs)
}

// MarkSeen remembers that user (unscoped) marked the missed call seen, so a later
// change of the record (a rating) keeps it seen in their recent calls. It
// reports whether that is news. Which calls a user may mark, and the "seen"
// frame, are the broker's: it decides from the user's recent calls, which
// outlive this record (event.CallLog.MarkSeen).
func (r *CallState) MarkSeen(user string) bool {
	if slices.Contains(r.SeenBy, user) {
		return false
	}
	r.SeenBy = append(r.SeenBy, user)
	return true
}

// recordFor is the record as user keeps it.
func (r *CallState) recordFor(user string) Record {
	rc := *r.Record
	rc.Seen = slices.Contains(r.SeenBy, user)
	return rc
}

// Active returns, for every user the outs touch, how their active calls
// changed: the leg when it is still open, nil when it closed. The changes
// carry the outs' (scoped) user keys.
func (r *CallState) Active(outs []Out, now time.Time) []ActiveChange {
	var ch []ActiveChange
	seen := map[string]bool{}
	for _, o := range outs {
		if seen[o.UserKey] || o.Payload == nil {
			continue
		}
		seen[o.UserKey] = true
		leg := r.Legs[strings.TrimPrefix(o.UserKey, r.Scope)]
		if leg == nil {
			continue
		}
		if leg.Open(now) {
			ch = append(ch, ActiveChange{UserKey: o.UserKey, Leg: leg})
		} else {
			ch = append(ch, ActiveChange{UserKey: o.UserKey})
		}
	}
	return ch
}

// users lists the record's users in a stable order, so frames go out in
// the same order on every retry.
func (r *CallState) users() []string {
	us := make([]string, 0, len(r.Legs))
	for u := range r.Legs {
		us = append(us, u)
	}
	slices.Sort(us)
	return us
}

// Stale reports whether an active call frame has had no news for too long to
// be shown at now (its ringing or talking TTL passed).
func (f CallFrame) Stale(now time.Time) bool {
	ttl := RingingTTL
	if f.Event == Accepted {
		ttl = TalkingTTL
	}
	return now.Sub(f.At) > ttl
}

// SortActive orders active calls oldest first, the order cards stack in.
func SortActive(calls []CallFrame) {
	slices.SortFunc(calls, func(a, b CallFrame) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.CallID, b.CallID)
	})
}
