package forward

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRetryAfterIsReadAsSecondsOrADate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":     0,
		"3":    3 * time.Second,
		"-1":   0,
		"soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", v, got, want)
		}
	}
}

func TestSnippetIsShortAndValidUTF8(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("я", maxReasonBody) // two bytes each
	got := snippet([]byte("  " + long + "  "))
	if len(got) > maxReasonBody || !strings.HasPrefix(long, got) {
		t.Errorf("snippet of %d bytes: %q", len(got), got)
	}
	if got := snippet([]byte("bad \xff byte")); got != "bad ? byte" {
		t.Errorf("snippet = %q", got)
	}
}

func TestRedactURLDropsCredentialsAndQuery(t *testing.T) {
	t.Parallel()
	if got := redactURL("https://user:pw@crm.example.com/api/calls?token=s3cret"); got != "https://crm.example.com/api/calls" {
		t.Errorf("redactURL = %q", got)
	}
}
