package pbx

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
)

func FuzzParseCallID(f *testing.F) {
	for _, s := range []string{`{"callid":"B10D0EB124F4E64AFAEA-1511"}`, `{"id":1511}`, `"A-1"`, "A-2\r\n", "", `{"callid":{}}`, "\ufeff1.5e3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		id, err := parseCallID(body)
		if err != nil {
			return
		}
		if id == "" || strings.IndexFunc(id, unicode.IsSpace) >= 0 {
			t.Fatalf("call id %q from %q", id, body)
		}
	})
}

func FuzzDecodeDirectory(f *testing.F) {
	for _, s := range []string{
		`[{"name":"andy","realName":"A","ext":708,"telnum":"79261234567"}]`,
		`[{"id":"sales","realName":"S","ext":701},{"id":5,"ext":null}]`,
		`[{"ext":true}]`, `null`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var as []Account
		if decodeJSON(body, &as) == nil {
			// What was read must encode and read back the same.
			b, err := json.Marshal(as)
			if err != nil {
				t.Fatal(err)
			}
			var again []Account
			if err := json.Unmarshal(b, &again); err != nil || len(again) != len(as) {
				t.Fatalf("round trip of %s: %v", b, err)
			}
		}
		var gs []Group
		_ = decodeJSON(body, &gs)
	})
}
