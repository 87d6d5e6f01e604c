package webhook

import (
	"maps"
	"net/url"
	"testing"
)

// FuzzURLEncodedMatchesParseQuery: the form parser reads what url.ParseQuery
// reads, and refuses what it refuses (and repeated fields besides).
func FuzzURLEncodedMatchesParseQuery(f *testing.F) {
	for _, s := range []string{
		"cmd=event&type=INCOMING&phone=79101234567&user=andy&callid=c1&crm_token=t",
		"a=1&&b=%20x+y&c", "a=%zz", "a;b=1", "=v&k=", "a=1&a=2", "name=%D0%9F%D1%80%D0%B8",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, err := parseURLEncoded([]byte(body))
		vs, qerr := url.ParseQuery(body)
		want := Form{}
		for k, v := range vs {
			if len(v) > 1 {
				qerr = errRepeated
			}
			want[k] = v[0]
		}
		if qerr == nil {
			qerr = validUTF8(want)
		}
		if (err != nil) != (qerr != nil) {
			t.Fatalf("%q: error %v, url.ParseQuery's way %v", body, err, qerr)
		}
		if err == nil && !maps.Equal(got, want) {
			t.Fatalf("%q: %v, want %v", body, got, want)
		}
	})
}

var errRepeated = url.EscapeError("repeated")

func validUTF8(f Form) error {
	g := Form{}
	for k, v := range f {
		if err := g.set(k, v); err != nil {
			return err
		}
	}
	return nil
}
