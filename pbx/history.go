package pbx

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The periods of a history query; a period overrides Start and End.
const (
	PeriodToday     = "today"
	PeriodYesterday = "yesterday"
	PeriodThisWeek  = "this_week"
	PeriodLastWeek  = "last_week"
	PeriodThisMonth = "this_month"
	PeriodLastMonth = "last_month"
)

// The call types of a history query and of a HistoryRecord (TypeAll only in
// a query).
const (
	TypeAll    = "all"
	TypeIn     = "in"
	TypeOut    = "out"
	TypeMissed = "missed"
)

// ValidPeriod reports whether p is one of the Period* constants.
func ValidPeriod(p string) bool {
	switch p {
	case PeriodToday, PeriodYesterday, PeriodThisWeek, PeriodLastWeek, PeriodThisMonth, PeriodLastMonth:
		return true
	}
	return false
}

// ValidType reports whether t is one of the Type* constants.
func ValidType(t string) bool {
	switch t {
	case TypeAll, TypeIn, TypeOut, TypeMissed:
		return true
	}
	return false
}

// HistoryQuery selects the calls of a history command (docs/pbx-api.md, history).
// The zero value asks for everything the PBX's default gives.
type HistoryQuery struct {
	// Period is one of the Period* constants; it overrides Start and End.
	// Empty means none.
	Period string
	// Type is one of the Type* constants. Empty means the PBX's default,
	// TypeAll.
	Type string
	// Start and End bound the calls' start, sent in UTC as TimeFormat.
	// Zero means unbounded on that side.
	Start, End time.Time
	// Limit caps the number of records. Zero means no cap; negative is
	// invalid.
	Limit int
}

// values validates q and encodes it as form fields.
func (q HistoryQuery) values() (url.Values, error) {
	v := url.Values{}
	if q.Period != "" {
		if !ValidPeriod(q.Period) {
			return nil, invalid("unknown period %q", q.Period)
		}
		v.Set("period", q.Period)
	}
	if q.Type != "" {
		if !ValidType(q.Type) {
			return nil, invalid("unknown type %q", q.Type)
		}
		v.Set("type", q.Type)
	}
	if !q.Start.IsZero() {
		v.Set("start", FormatTime(q.Start))
	}
	if !q.End.IsZero() {
		v.Set("end", FormatTime(q.End))
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return nil, invalid("end %s is before start %s", FormatTime(q.End), FormatTime(q.Start))
	}
	switch {
	case q.Limit < 0:
		return nil, invalid("negative limit %d", q.Limit)
	case q.Limit > 0:
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v, nil
}

// History fetches the call history q selects (command history) and parses
// the CSV answer with ParseHistory. It is retried on network errors and 5xx.
func (c *Client) History(ctx context.Context, q HistoryQuery) ([]HistoryRecord, error) {
	if err := c.ready(CmdHistory); err != nil {
		return nil, err
	}
	params, err := q.values()
	if err != nil {
		return nil, wrapCmd(CmdHistory, err)
	}
	body, err := c.call(ctx, CmdHistory, params)
	if err != nil {
		return nil, err
	}
	if b := trimBody(body); len(b) > 0 && (b[0] == '{' || b[0] == '[') {
		// JSON where CSV belongs: an empty list, or an error with a 200.
		var empty []json.RawMessage
		if json.Unmarshal(b, &empty) == nil && len(empty) == 0 {
			return nil, nil
		}
		return nil, wrapCmd(CmdHistory, fmt.Errorf("%w: JSON instead of CSV: %s", ErrBadResponse, errorMessage(http.StatusOK, b)))
	}
	recs, err := ParseHistory(bytes.NewReader(body))
	if err != nil {
		return nil, wrapCmd(CmdHistory, fmt.Errorf("%w: %w", ErrBadResponse, err))
	}
	return recs, nil
}
