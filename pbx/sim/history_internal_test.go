package sim

import (
	"net/url"
	"testing"
	"time"

	"github.com/callpop/callpop/pbx"
)

func TestPeriodsAreMeasuredInUTCWithWeeksFromMonday(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 3, 3, 23, 30, 0, 0, time.FixedZone("MSK", 3*3600)) // Sunday 20:30 UTC
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		period   string
		from, to time.Time
	}{
		{pbx.PeriodToday, d(2024, 3, 3), d(2024, 3, 4)},
		{pbx.PeriodYesterday, d(2024, 3, 2), d(2024, 3, 3)},
		{pbx.PeriodThisWeek, d(2024, 2, 26), d(2024, 3, 4)},
		{pbx.PeriodLastWeek, d(2024, 2, 19), d(2024, 2, 26)},
		{pbx.PeriodThisMonth, d(2024, 3, 1), d(2024, 4, 1)},
		{pbx.PeriodLastMonth, d(2024, 2, 1), d(2024, 3, 1)},
	} {
		from, to, ok := periodRange(tc.period, now)
		if !ok || !from.Equal(tc.from) || !to.Equal(tc.to) {
			t.Errorf("%s: [%v, %v), want [%v, %v)", tc.period, from, to, tc.from, tc.to)
		}
	}
}

func TestHistoryQueryBoundsAreInclusiveForEndExclusiveForPeriods(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 3, 13, 10, 0, 0, 0, time.UTC)
	midnight := time.Date(2024, 3, 14, 0, 0, 0, 0, time.UTC)
	q, err := parseHistoryQuery(url.Values{"end": {pbx.FormatTime(midnight)}}, now)
	if err != nil || !q.match(pbx.HistoryRecord{Start: midnight}) {
		t.Errorf("explicit end excludes its own second: %v", err)
	}
	q, err = parseHistoryQuery(url.Values{"period": {"TODAY"}}, now)
	if err != nil || q.match(pbx.HistoryRecord{Start: midnight}) || !q.match(pbx.HistoryRecord{Start: now}) {
		t.Errorf("today: %v", err)
	}
}
