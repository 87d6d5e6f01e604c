package pbx

import (
	"fmt"
	"time"
)

// TimeFormat is the PBX's timestamp layout, always UTC: YYYYmmddTHHMMSSZ.
const TimeFormat = "20060102T150405Z"

// FormatTime formats t in UTC as TimeFormat.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// ParseTime parses a TimeFormat timestamp; the result is in UTC.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(TimeFormat, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("pbx: timestamp %q: want %s", s, TimeFormat)
	}
	return t, nil
}

// startLayouts are the layouts a history CSV start may come in; the document
// only says "UTC", so besides TimeFormat the common ones are accepted.
var startLayouts = []string{TimeFormat, time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05"}

// parseStart parses a history CSV start in any of startLayouts, as UTC, to
// the second like TimeFormat.
func parseStart(s string) (time.Time, error) {
	for _, l := range startLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t.UTC().Truncate(time.Second), nil
		}
	}
	return time.Time{}, fmt.Errorf("start %q is no timestamp", s)
}
