package webhook_test

import (
	"errors"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/webhook"
)

func TestParseBody(t *testing.T) {
	t.Parallel()
	mp, mpType := fields{"cmd": "event", "phone": "79101234567"}.multipart()
	for _, tc := range []struct {
		name        string
		contentType string
		body        string
		want        webhook.Form // nil: an error is wanted
	}{
		{"FormIsRead", formType, "cmd=event&phone=%2B79101234567&user=andy",
			webhook.Form{"cmd": "event", "phone": "+79101234567", "user": "andy"}},
		{"PlusInFormIsSpace", formType, "groupRealName=Sales+team", webhook.Form{"groupRealName": "Sales team"}},
		{"NoContentTypeIsForm", "", "cmd=event", webhook.Form{"cmd": "event"}},
		{"EmptyFormIsNoFields", formType, "", webhook.Form{}},
		{"KeyWithoutValueIsEmpty", formType, "cmd=event&wait", webhook.Form{"cmd": "event", "wait": ""}},
		{"EmptyPairsAreSkipped", formType, "&&cmd=event&&", webhook.Form{"cmd": "event"}},
		{"CyrillicIsKept", formType, "groupRealName=%D0%9E%D1%82%D0%B4%D0%B5%D0%BB", webhook.Form{"groupRealName": "Отдел"}},
		{"JSONScalarsAreText", "application/json",
			`{"cmd":"history","duration":124,"big":12345678901234567890,"frac":"1.50","ok":true,"no":false,"gone":null}`,
			webhook.Form{"cmd": "history", "duration": "124", "big": "12345678901234567890", "frac": "1.50", "ok": "true", "no": "false"}},
		{"JSONNumberIsKeptAsWritten", "application/json", `{"duration":1.50,"e":1e3}`,
			webhook.Form{"duration": "1.50", "e": "1e3"}},
		{"JSONEscapesAreDecoded", "application/json", `{"groupRealName":"\u041e\u0442\u0434\u0435\u043b"}`,
			webhook.Form{"groupRealName": "Отдел"}},
		{"EmptyJSONObjectIsNoFields", "application/json", ` { } `, webhook.Form{}},
		{"JSONWithTrailingWhitespaceIsRead", "application/json", "{\"cmd\":\"event\"}\n\n", webhook.Form{"cmd": "event"}},
		{"MultipartIsRead", mpType, mp, webhook.Form{"cmd": "event", "phone": "79101234567"}},
		{"MultipartFilePartIsAField", "multipart/form-data; boundary=b",
			"--b\r\nContent-Disposition: form-data; name=\"link\"; filename=\"x.txt\"\r\n\r\nhttps://l/x\r\n--b--\r\n",
			webhook.Form{"link": "https://l/x"}},
		{"ContentTypeIsCaseInsensitive", "Application/JSON", `{"cmd":"event"}`, webhook.Form{"cmd": "event"}},

		{"TextPlainIsRefused", "text/plain", "cmd=event", nil},
		{"XMLIsRefused", "application/xml", "<cmd>event</cmd>", nil},
		{"BadContentTypeIsRefused", "application/", "cmd=event", nil},
		{"RepeatedFormKeyIsRefused", formType, "a=1&a=2", nil},
		{"RepeatedEmptyFormKeyIsRefused", formType, "a&a", nil},
		{"SemicolonInFormIsRefused", formType, "a=1;b=2", nil},
		{"BadEscapeInFormIsRefused", formType, "a=%G1", nil},
		{"InvalidUTF8InFormValueIsRefused", formType, "a=%FF", nil},
		{"InvalidUTF8InFormKeyIsRefused", formType, "%FF=a", nil},
		{"RawInvalidUTF8InFormIsRefused", formType, "a=\xc3\x28", nil},
		{"RepeatedJSONKeyIsRefused", "application/json", `{"cmd":"event","cmd":"event"}`, nil},
		{"InvalidUTF8InJSONIsRefused", "application/json", "{\"cmd\":\"ev\xffent\"}", nil},
		{"JSONArrayIsRefused", "application/json", `[{"cmd":"event"}]`, nil},
		{"JSONScalarIsRefused", "application/json", `"cmd"`, nil},
		{"NestedJSONObjectIsRefused", "application/json", `{"a":{"b":1}}`, nil},
		{"NestedJSONArrayIsRefused", "application/json", `{"a":[1]}`, nil},
		{"TrailingJSONIsRefused", "application/json", `{"a":1}{"b":2}`, nil},
		{"TrailingGarbageAfterJSONIsRefused", "application/json", `{"a":1} x`, nil},
		{"TruncatedJSONIsRefused", "application/json", `{"a":`, nil},
		{"EmptyJSONBodyIsRefused", "application/json", ``, nil},
		{"MultipartWithoutBoundaryIsRefused", "multipart/form-data", mp, nil},
		{"MultipartPartWithoutNameIsRefused", "multipart/form-data; boundary=b",
			"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n", nil},
		{"RepeatedMultipartPartIsRefused", "multipart/form-data; boundary=b",
			"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n2\r\n--b--\r\n", nil},
		{"TruncatedMultipartIsRefused", "multipart/form-data; boundary=b",
			"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := webhook.ParseBody(tc.contentType, strings.NewReader(tc.body), webhook.DefaultMaxBody)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("ParseBody = %v, want an error", got)
				}
				if !errors.Is(err, webhook.ErrBadBody) {
					t.Errorf("error %v does not wrap ErrBadBody", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBody: %v", err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("ParseBody = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseBodySize(t *testing.T) {
	t.Parallel()
	const max = 16
	for _, tc := range []struct {
		name    string
		body    io.Reader
		wantErr error
	}{
		{"BodyAtMaxIsRead", strings.NewReader("cmd=event&a=1234"), nil},
		{"BodyOverMaxIsTooLarge", strings.NewReader("cmd=event&a=12345"), webhook.ErrTooLarge},
		{"HugeBodyIsTooLarge", strings.NewReader(strings.Repeat("a", 1<<20)), webhook.ErrTooLarge},
		{"MaxBytesReaderLimitIsTooLarge", http.MaxBytesReader(nil, io.NopCloser(strings.NewReader("cmd=event&a=1")), 4),
			webhook.ErrTooLarge},
		{"ReadErrorIsBadBody", iotest.ErrReader(io.ErrUnexpectedEOF), webhook.ErrBadBody},
		{"ReadErrorAfterDataIsBadBody", io.MultiReader(strings.NewReader("cmd="), iotest.ErrReader(io.ErrClosedPipe)),
			webhook.ErrBadBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := webhook.ParseBody(formType, tc.body, max)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("ParseBody = %v, %v; want error %v", f, err, tc.wantErr)
			}
		})
	}
}

func TestFormCmdIsTrimmedAndLowered(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"event": "event", " EVENT ": "event", "History": "history", "": ""} {
		if got := (webhook.Form{"cmd": in}).Cmd(); got != want {
			t.Errorf("Cmd() of %q = %q, want %q", in, got, want)
		}
	}
	if got := (webhook.Form{}).Cmd(); got != "" {
		t.Errorf("Cmd() without cmd = %q, want empty", got)
	}
}

func TestParseEvent(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := webhook.Form{
		"cmd": "event", "type": "accepted", "phone": " 79101234567 ", "user": "Andy@acme", "callid": "c-1",
		"diversion": "74950000001", "groupRealName": "Sales", "ext": "101", "telnum": "74950000002",
		"second_callid": "c-2", "z-flag": "1",
	}
	ev, err := webhook.ParseEvent(f, now)
	if err != nil {
		t.Fatalf("ParseEvent: %v", err)
	}
	want := event.Event{
		Type: event.Accepted, CallID: "c-1", Phone: "79101234567", User: "Andy@acme", Direction: "",
		Diversion: "74950000001", GroupRealName: "Sales", Ext: "101", Telnum: "74950000002", SecondCallID: "c-2",
		At: now,
	}
	if ev != want {
		t.Errorf("ParseEvent =\n %+v\nwant\n %+v", ev, want)
	}

	for name, f := range map[string]webhook.Form{
		"MissingType":     {"phone": "1", "user": "u", "callid": "c"},
		"BadType":         {"type": "RING", "phone": "1", "user": "u", "callid": "c"},
		"BadDirection":    {"type": "INCOMING", "direction": "up", "phone": "1", "user": "u", "callid": "c"},
		"DomainOnlyUser":  {"type": "INCOMING", "phone": "1", "user": "@acme", "callid": "c"},
		"ControlInCallID": {"type": "INCOMING", "phone": "1", "user": "u", "callid": "c\x00"},
	} {
		if _, err := webhook.ParseEvent(f, now); !errors.Is(err, webhook.ErrInvalid) {
			t.Errorf("ParseEvent(%s) = %v, want ErrInvalid", name, err)
		}
	}
}

func TestParseHistory(t *testing.T) {
	t.Parallel()
	f := webhook.Form{
		"cmd": "history", "type": "OUT", "status": "notavailable", "phone": "79101234567", "user": "pbx",
		"start": "20170703T121110Z", "duration": "124", "callid": "c-1", "link": "https://link/file.mp3",
	}
	rec, err := webhook.ParseHistory(f)
	if err != nil {
		t.Fatalf("ParseHistory: %v", err)
	}
	want := event.Record{
		CallID: "c-1", User: "pbx", Phone: "79101234567", Direction: event.DirOut, Status: event.NotAvailable,
		Start: time.Date(2017, 7, 3, 12, 11, 10, 0, time.UTC), Duration: 124, Link: "https://link/file.mp3",
	}
	if rec.Contact != nil || rec.CallID != want.CallID || rec.User != want.User || rec.Phone != want.Phone ||
		rec.Direction != want.Direction || rec.Status != want.Status || !rec.Start.Equal(want.Start) ||
		rec.Start.Location() != time.UTC || rec.Duration != want.Duration || rec.Link != want.Link {
		t.Errorf("ParseHistory =\n %+v\nwant\n %+v", rec, want)
	}
}

func TestParseContact(t *testing.T) {
	t.Parallel()
	phone, callID, err := webhook.ParseContact(webhook.Form{"phone": "+79101234567", "callid": "c-1", "diversion": "1"})
	if err != nil || phone != "+79101234567" || callID != "c-1" {
		t.Errorf("ParseContact = %q, %q, %v; want +79101234567, c-1", phone, callID, err)
	}
	if _, _, err := webhook.ParseContact(webhook.Form{"phone": "+79101234567"}); !errors.Is(err, webhook.ErrInvalid) {
		t.Errorf("ParseContact without callid = %v, want ErrInvalid", err)
	}
}

func TestParseRating(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		f      webhook.Form
		want   event.Rating
		wantOK bool
	}{
		{"FullRatingIsRead", webhook.Form{"callid": "c-1", "rating": "5", "user": "andy", "phone": "79101234567"},
			event.Rating{CallID: "c-1", Value: "5", User: "andy", Phone: "79101234567"}, true},
		{"RatingWithoutCallIDIsNothing", webhook.Form{"rating": "5"}, event.Rating{}, false},
		{"RatingWithoutValueIsNothing", webhook.Form{"callid": "c-1"}, event.Rating{}, false},
		{"RatingWithControlCharacterIsNothing", webhook.Form{"callid": "c-1", "rating": "5\x00"}, event.Rating{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := webhook.ParseRating(tc.f)
			if ok != tc.wantOK || (ok && got != tc.want) {
				t.Errorf("ParseRating = %+v, %v; want %+v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
