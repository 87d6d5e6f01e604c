package pbx

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzParseCallID: any 2xx body is a placed call, so parseCallID never
// fails; what it returns is either no id or one that reads as an id, and
// the same body always gives the same id.
func FuzzParseCallID(f *testing.F) {
	for _, s := range []string{
		`{"callid":"B10D0EB124F4E64AFAEA-1511"}`, `{"id":1511}`, `"A-1"`, "A-2\r\n", "", `{"callid":{}}`, "\ufeff1.5e3",
		`{"data":{"call_id":"x"}}`, `{"result":"ok","uuid":"x"}`, `{"id":1,"result":{"call":{"callId":"y"}}}`,
		`{"request_id":"r-1"}`, "<html>\n<body>", "OK", `[{"callid":"z"}]`, `{"a":{"b":{"c":{"id":"deep"}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		id := parseCallID(body)
		if id == "" {
			return
		}
		if len(id) > maxCallID || !utf8.ValidString(id) || strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
			t.Fatalf("call id %q from %q", id, body)
		}
		if again := parseCallID(body); again != id {
			t.Fatalf("body %q gave %q, then %q", body, id, again)
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
