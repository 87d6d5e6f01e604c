package phone_test

import (
	"testing"

	"github.com/callpop/callpop/internal/phone"
)

func TestDialableTakesWhatPeopleTypeAndNothingElse(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"79101234567":          "79101234567",
		"+7 (910) 123-45-67":   "+79101234567",
		" +7 910 123.45.67":    "+79101234567",
		"8-910-123-45-67":      "89101234567",
		"12":                   "12",
		"701":                  "701",
		"12345678901234567890": "12345678901234567890",
	} {
		if got, ok := phone.Dialable(in); !ok || got != want {
			t.Errorf("Dialable(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "1", "+", "7910+1234567", "79101234567;", "7910123456a", "123456789012345678901", "++79101234567", "7\u0661\u0662"} {
		if got, ok := phone.Dialable(in); ok {
			t.Errorf("Dialable(%q) = %q, accepted", in, got)
		}
	}
}

func TestKeyMakesOneNumberOfItsSpellings(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"79101234567", "89101234567", "+7 (910) 123-45-67", "9101234567"} {
		if got := phone.Key(in); got != "79101234567" {
			t.Errorf("Key(%q) = %q, want 79101234567", in, got)
		}
	}
	if got := phone.Key("701"); got != "701" {
		t.Errorf("Key(701) = %q: an extension stays as it is", got)
	}
}

func FuzzDialable(f *testing.F) {
	f.Add("+7 (910) 123-45-67")
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := phone.Dialable(s)
		if !ok {
			return
		}
		again, ok2 := phone.Dialable(d)
		if !ok2 || again != d {
			t.Fatalf("Dialable(%q) = %q, which is not dialable as it is (%q, %v)", s, d, again, ok2)
		}
		if phone.Key(d) != phone.Key(s) {
			t.Fatalf("Key differs between %q and its dialable form %q", s, d)
		}
	})
}
