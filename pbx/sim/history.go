package sim

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/callpop/callpop/pbx"
)

// historyQuery is a parsed history request. from and to bound the start:
// from ≤ start, and start < to (a period) or start ≤ to (an explicit end).
type historyQuery struct {
	from, to    time.Time
	toInclusive bool
	typ         string
	limit       int
}

// parseHistoryQuery reads the history fields; a period, measured in UTC
// from now with weeks starting on Monday, overrides start and end.
func parseHistoryQuery(f url.Values, now time.Time) (historyQuery, error) {
	q := historyQuery{typ: pbx.TypeAll, toInclusive: true}
	var err error
	if s := f.Get("start"); s != "" {
		if q.from, err = pbx.ParseTime(s); err != nil {
			return q, err
		}
	}
	if s := f.Get("end"); s != "" {
		if q.to, err = pbx.ParseTime(s); err != nil {
			return q, err
		}
	}
	if !q.from.IsZero() && !q.to.IsZero() && q.to.Before(q.from) {
		return q, errors.New("end before start")
	}
	if s := f.Get("period"); s != "" {
		from, to, ok := periodRange(strings.ToLower(s), now)
		if !ok {
			return q, errors.New("unknown period")
		}
		q.from, q.to, q.toInclusive = from, to, false
	}
	if s := f.Get("type"); s != "" {
		q.typ = strings.ToLower(s)
		if !pbx.ValidType(q.typ) {
			return q, errors.New("unknown type")
		}
	}
	if s := f.Get("limit"); s != "" {
		if q.limit, err = strconv.Atoi(s); err != nil || q.limit < 0 {
			return q, errors.New("bad limit")
		}
	}
	return q, nil
}

// periodRange is the [from, to) of a named period around now, in UTC.
func periodRange(period string, now time.Time) (from, to time.Time, ok bool) {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	week := day.AddDate(0, 0, -(int(day.Weekday())+6)%7)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	switch period {
	case pbx.PeriodToday:
		return day, day.AddDate(0, 0, 1), true
	case pbx.PeriodYesterday:
		return day.AddDate(0, 0, -1), day, true
	case pbx.PeriodThisWeek:
		return week, week.AddDate(0, 0, 7), true
	case pbx.PeriodLastWeek:
		return week.AddDate(0, 0, -7), week, true
	case pbx.PeriodThisMonth:
		return month, month.AddDate(0, 1, 0), true
	case pbx.PeriodLastMonth:
		return month.AddDate(0, -1, 0), month, true
	}
	return time.Time{}, time.Time{}, false
}

// apply selects the records of recs (in start order) q asks for; a limit
// keeps the most recent ones.
func (q historyQuery) apply(recs []pbx.HistoryRecord) []pbx.HistoryRecord {
	out := []pbx.HistoryRecord{}
	for _, r := range recs {
		if q.match(r) {
			out = append(out, r)
		}
	}
	if q.limit > 0 && len(out) > q.limit {
		out = out[len(out)-q.limit:]
	}
	return out
}

func (q historyQuery) match(r pbx.HistoryRecord) bool {
	if q.typ != pbx.TypeAll && r.Type != q.typ {
		return false
	}
	if !q.from.IsZero() && r.Start.Before(q.from) {
		return false
	}
	if !q.to.IsZero() && (r.Start.After(q.to) || !q.toInclusive && r.Start.Equal(q.to)) {
		return false
	}
	return true
}
