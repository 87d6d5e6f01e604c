package pbx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// bom is the UTF-8 byte order mark some PBXs put before an answer.
var bom = []byte("\xef\xbb\xbf")

// trimBody drops a byte order mark and surrounding white space.
func trimBody(b []byte) []byte {
	return bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(b), bom))
}

// flexString is a JSON string that may also come as a number (the
// document's groups example has ext: 701) or null.
type flexString string

// UnmarshalJSON accepts a string, a number or null.
func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("pbx: want a string or a number, got %.40s", b)
	}
	*f = flexString(n.String())
	return nil
}

// flexBool is a JSON boolean that may also come as a string ("true", "on",
// "1") or a number (0, 1).
type flexBool bool

// UnmarshalJSON accepts true/false, the strings true/false/on/off/1/0 (any
// case) and the numbers 1 and 0.
func (f *flexBool) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		var v bool
		if json.Unmarshal(b, &v) != nil {
			return fmt.Errorf("pbx: want a boolean, got %.40s", b)
		}
		*f = flexBool(v)
		return nil
	}
	v, ok := parseBool(string(s))
	if !ok {
		return fmt.Errorf("pbx: want a boolean, got %.40s", b)
	}
	*f = flexBool(v)
	return nil
}

// parseBool reads true/false, on/off, yes/no and 1/0 in any case.
func parseBool(s string) (v, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "on", "yes", "1":
		return true, true
	case "false", "off", "no", "0":
		return false, true
	}
	if v, err := strconv.ParseBool(s); err == nil {
		return v, true
	}
	return false, false
}

// decodeJSON decodes a 2xx JSON answer into v, wrapping failures in
// ErrBadResponse.
func decodeJSON(body []byte, v any) error {
	if err := json.Unmarshal(trimBody(body), v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return nil
}
