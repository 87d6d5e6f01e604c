package forward

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/callpop/callpop/event"
)

// The flags an Item may carry (package documentation, docs/forwarding.md).
const (
	// FlagMissedUnknownNumber: an incoming call, Missed or Cancel, from a
	// number without a contact.
	FlagMissedUnknownNumber = "missed_unknown_number"
	// FlagOutgoingUnknownNumber: an outgoing call to a number without a
	// contact.
	FlagOutgoingUnknownNumber = "outgoing_unknown_number"
	// FlagUnmappedUser: the record's user is "pbx", a group login or empty.
	FlagUnmappedUser = "unmapped_user"
)

// Item is the JSON body POSTed to the CRM for one call record. Its field
// names are part of the contract with the CRM (docs/forwarding.md).
type Item struct {
	// Key identifies the record for deduplication: Key(record), or
	// RatingKey(record) for a record sent again with a late rating; the same
	// as the Idempotency-Key header.
	Key           string         `json:"key"`
	CallID        string         `json:"callid"`
	User          string         `json:"user"`
	Phone         string         `json:"phone"`
	Direction     string         `json:"direction"`
	Status        event.Status   `json:"status"`
	Start         time.Time      `json:"start"` // RFC 3339, UTC
	Duration      int            `json:"duration"`
	Link          string         `json:"link,omitempty"`
	Ext           string         `json:"ext,omitempty"`
	GroupRealName string         `json:"groupRealName,omitempty"`
	Telnum        string         `json:"telnum,omitempty"`
	Diversion     string         `json:"diversion,omitempty"`
	Rating        string         `json:"rating,omitempty"`
	Contact       *event.Contact `json:"contact,omitempty"`
	// Flags lists the Flag* constants that apply, in the order they are
	// declared; empty (never null) when none does.
	Flags []string `json:"flags"`
}

// NewItem returns the Item for rec, flags included.
func NewItem(rec event.Record) Item {
	it := Item{
		Key:           Key(rec),
		CallID:        rec.CallID,
		User:          rec.User,
		Phone:         rec.Phone,
		Direction:     rec.Direction,
		Status:        rec.Status,
		Start:         rec.Start.UTC(),
		Duration:      rec.Duration,
		Link:          rec.Link,
		Ext:           rec.Ext,
		GroupRealName: rec.GroupRealName,
		Telnum:        rec.Telnum,
		Diversion:     rec.Diversion,
		Rating:        rec.Rating,
		Flags:         Flags(rec),
	}
	if known(rec.Contact) {
		c := *rec.Contact
		it.Contact = &c
	}
	return it
}

// Key is the deduplication and idempotency key of a record: its callid and
// its user's key (event.UserKey), joined by ":". The same call recorded for
// two users makes two items; "Andy@acme" and "andy" make one.
func Key(rec event.Record) string { return rec.CallID + ":" + event.UserKey(rec.User) }

// RatingKey is the key of a record sent again because its rating (cmd=rating)
// arrived after it: Key(rec), ":rating:" and the rating. Each rating value is
// its own record for the CRM; the same one again is a repeat.
func RatingKey(rec event.Record) string { return Key(rec) + ":rating:" + rec.Rating }

// Flags returns the flags that apply to rec (Item.Flags).
func Flags(rec event.Record) []string {
	flags := []string{}
	unknown := !known(rec.Contact)
	if rec.Direction == event.DirIn && unknown && (rec.Status == event.Missed || rec.Status == event.Cancel) {
		flags = append(flags, FlagMissedUnknownNumber)
	}
	if rec.Direction == event.DirOut && unknown {
		flags = append(flags, FlagOutgoingUnknownNumber)
	}
	if !event.IsPerson(event.UserKey(rec.User)) {
		flags = append(flags, FlagUnmappedUser)
	}
	return flags
}

// known reports whether c says anything about the number.
func known(c *event.Contact) bool { return c != nil && *c != (event.Contact{}) }

// marshal encodes v as compact JSON without HTML escaping (a recording
// link's "&" stays "&"), with no trailing newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
