package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/callpop/callpop/event"
)

// ErrInvalid is wrapped by every validation error; the PBX is answered
// 400 {"error":"Invalid parameters"}.
var ErrInvalid = errors.New("webhook: invalid parameters")

// Commands the PBX sends (docs/pbx-api.md, "PBX → CRM: the webhooks").
const (
	CmdEvent   = "event"
	CmdContact = "contact"
	CmdHistory = "history"
	CmdRating  = "rating"
	CmdWebhook = "webhook"
)

// StartLayout is the PBX's timestamp form, always UTC.
const StartLayout = "20060102T150405Z"

// Field length limits: far above anything a PBX sends, low enough that a
// frame stays small.
const (
	maxID    = 256  // callid, user
	maxPhone = 64   // phone, diversion, telnum, ext
	maxText  = 512  // names and other free text
	maxLink  = 2048 // recording URL
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// str returns field k checked for length and control characters;
// required fields must be non-empty.
func (f Form) str(k string, max int, required bool) (string, error) {
	v := strings.TrimSpace(f[k])
	if v == "" {
		if required {
			return "", invalid("%s is required", k)
		}
		return "", nil
	}
	if len(v) > max {
		return "", invalid("%s is longer than %d bytes", k, max)
	}
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return "", invalid("%s has control characters", k)
	}
	return v, nil
}

// fields reads several fields into their targets, stopping at the first error.
type fieldSpec struct {
	name     string
	dst      *string
	max      int
	required bool
}

func (f Form) read(specs ...fieldSpec) error {
	for _, s := range specs {
		v, err := f.str(s.name, s.max, s.required)
		if err != nil {
			return err
		}
		*s.dst = v
	}
	return nil
}

// Cmd returns the command, lower-cased.
func (f Form) Cmd() string { return strings.ToLower(strings.TrimSpace(f["cmd"])) }

// ParseEvent validates a cmd=event form (docs/pbx-api.md, "event"; field
// notes 5–8).
func ParseEvent(f Form, now time.Time) (event.Event, error) {
	ev := event.Event{At: now}
	var typ, dir string
	err := f.read(
		fieldSpec{"type", &typ, maxText, true},
		fieldSpec{"phone", &ev.Phone, maxPhone, true},
		fieldSpec{"user", &ev.User, maxID, true},
		fieldSpec{"callid", &ev.CallID, maxID, true},
		fieldSpec{"direction", &dir, maxText, false},
		fieldSpec{"diversion", &ev.Diversion, maxPhone, false},
		fieldSpec{"groupRealName", &ev.GroupRealName, maxText, false},
		fieldSpec{"ext", &ev.Ext, maxPhone, false},
		fieldSpec{"telnum", &ev.Telnum, maxPhone, false},
		fieldSpec{"second_callid", &ev.SecondCallID, maxID, false},
	)
	if err != nil {
		return event.Event{}, err
	}
	var ok bool
	if ev.Type, ok = event.ParseType(typ); !ok {
		return event.Event{}, invalid("type %q", typ)
	}
	if dir != "" {
		if ev.Direction, ok = event.ParseDirection(dir); !ok {
			return event.Event{}, invalid("direction %q", dir)
		}
	}
	if event.UserKey(ev.User) == "" {
		return event.Event{}, invalid("user is empty")
	}
	if err := checkLogin(ev.User); err != nil {
		return event.Event{}, err
	}
	return ev, nil
}

// ParseContact validates a cmd=contact form (docs/pbx-api.md, "contact").
func ParseContact(f Form) (phone, callID string, err error) {
	err = f.read(
		fieldSpec{"phone", &phone, maxPhone, true},
		fieldSpec{"callid", &callID, maxID, true},
	)
	return phone, callID, err
}

// ParseHistory validates a cmd=history form (docs/pbx-api.md, "history").
func ParseHistory(f Form) (event.Record, error) {
	var rec event.Record
	var typ, status, start, duration string
	err := f.read(
		fieldSpec{"type", &typ, maxText, true},
		fieldSpec{"phone", &rec.Phone, maxPhone, true},
		fieldSpec{"start", &start, maxText, true},
		fieldSpec{"duration", &duration, maxText, true},
		fieldSpec{"callid", &rec.CallID, maxID, true},
		fieldSpec{"status", &status, maxText, true},
		fieldSpec{"user", &rec.User, maxID, false},
		fieldSpec{"ext", &rec.Ext, maxPhone, false},
		fieldSpec{"groupRealName", &rec.GroupRealName, maxText, false},
		fieldSpec{"telnum", &rec.Telnum, maxPhone, false},
		fieldSpec{"diversion", &rec.Diversion, maxPhone, false},
		fieldSpec{"link", &rec.Link, maxLink, false},
	)
	if err != nil {
		return event.Record{}, err
	}
	var ok bool
	if rec.Direction, ok = event.ParseDirection(typ); !ok {
		return event.Record{}, invalid("type %q", typ)
	}
	if rec.Status, ok = event.ParseStatus(status); !ok {
		return event.Record{}, invalid("status %q", status)
	}
	if rec.Start, err = time.Parse(StartLayout, start); err != nil || len(start) != len(StartLayout) {
		return event.Record{}, invalid("start %q: want YYYYmmddTHHMMSSZ", start)
	}
	if rec.Duration, err = parseDuration(duration); err != nil {
		return event.Record{}, err
	}
	if err := checkLogin(rec.User); err != nil {
		return event.Record{}, err
	}
	if rec.Link != "" {
		u, err := url.Parse(rec.Link)
		if err != nil || (!strings.EqualFold(u.Scheme, "https") && !strings.EqualFold(u.Scheme, "http")) || u.Host == "" {
			return event.Record{}, invalid("link is not an http(s) URL")
		}
	}
	return rec, nil
}

// checkLogin refuses a login whose user key holds "/": "/" separates a
// tenant's scope from a key (tenant.Key), so such a login could reach
// another tenant's keys.
func checkLogin(user string) error {
	if strings.Contains(event.UserKey(user), "/") {
		return invalid("user holds /")
	}
	return nil
}

// parseDuration accepts a non-negative integer of seconds, at most ten years.
func parseDuration(s string) (int, error) {
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, invalid("duration %q: want a non-negative integer", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > 10*365*24*3600 {
		return 0, invalid("duration %q out of range", s)
	}
	return n, nil
}

// ParseRating reads a cmd=rating form. Ratings are extras the vendor's
// description leaves out (docs/pbx-api.md, "rating and webhook"): ok=false
// means there is nothing to attach, never an error.
func ParseRating(f Form) (event.Rating, bool) {
	var r event.Rating
	err := f.read(
		fieldSpec{"callid", &r.CallID, maxID, true},
		fieldSpec{"rating", &r.Value, maxText, true},
		fieldSpec{"user", &r.User, maxID, false},
		fieldSpec{"phone", &r.Phone, maxPhone, false},
	)
	return r, err == nil
}
