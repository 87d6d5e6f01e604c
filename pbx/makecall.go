package pbx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"
)

// maxCallID is the longest call id taken from an answer, as the webhook
// bounds the PBX's callids (webhook/validate.go).
const maxCallID = 256

// MakeCall asks the PBX to ring user's phone and then connect them to phone
// (command makeCall) and returns the call id. user is the PBX login, internal
// number or direct number. It is sent exactly once, never retried: a retry
// could ring the manager twice.
//
// Any 2xx answer means the call was placed, whatever its body: PBXs in the
// field answer with the id in many shapes, or with none. The id is "" when
// the answer held none callpop could read (parseCallID); that is logged,
// never an error, so a caller never offers a second click that would ring
// the manager again.
func (c *Client) MakeCall(ctx context.Context, user, phone string) (string, error) {
	if err := c.ready(CmdMakeCall); err != nil {
		return "", err
	}
	if user == "" || phone == "" {
		return "", wrapCmd(CmdMakeCall, invalid("user and phone are required"))
	}
	body, err := c.call(ctx, CmdMakeCall, url.Values{"user": {user}, "phone": {phone}})
	if errors.Is(err, errUnreadBody) {
		c.log.Warn("makeCall placed the call; its answer could not be read", zap.Error(err))
		return "", nil
	}
	if err != nil {
		return "", err
	}
	id := parseCallID(body)
	if id == "" {
		c.log.Warn("makeCall placed the call; no call id in the answer",
			zap.Int("bytes", len(body)), zap.String("excerpt", c.excerpt(body)))
	}
	return id, nil
}

// excerpt is a short, printable start of an answer for a log line, with the
// client's token masked should the PBX echo the request back.
func (c *Client) excerpt(body []byte) string {
	const limit = 40 // bytes shown
	b := trimBody(body[:min(len(body), 4<<10)])
	if c.token != "" {
		b = bytes.ReplaceAll(b, []byte(c.token), []byte("[token]"))
	}
	var sb strings.Builder
	for _, r := range string(b) {
		if sb.Len() >= limit {
			sb.WriteString("…")
			break
		}
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			r = '?'
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// Keys that name a call id in a JSON answer, by priority, compared after
// normalising (lower case, without '_', '-', '.'): callid also matches
// call_id and callId.
var callIDKeys = []string{"callid", "calluuid", "uniqueid", "uuid", "id"}

// maxDepth is how deep into nested objects parseCallID looks: the answer
// itself, an envelope ({"data":{…}}) and one more ({"result":{"call":{…}}}).
const maxDepth = 2

// parseCallID reads the call id from makeCall's answer, "200 with the call
// id", in any of the shapes PBXs answer with, or returns "" when there is
// none it can trust:
//   - a JSON object: the value of a known key (callIDKeys, by priority), in
//     the object or in the objects nested in it up to maxDepth, shallowest
//     first; else the first value, in key order, under a key with an id word
//     in it (request_id, sessionId, call-uid), shallowest first;
//   - a JSON string or number: itself;
//   - plain text: its first line.
//
// The value must be a string or number that reads as an id (validID); plain
// text and guessed keys must moreover hold only id characters (idText).
// Status words ("OK", "success") are no id.
func parseCallID(body []byte) string {
	b := trimBody(body)
	if len(b) == 0 {
		return ""
	}
	if json.Valid(b) {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return ""
		}
		switch v := v.(type) {
		case string, json.Number:
			return idValue(v, validID)
		case map[string]any:
			return idInObject(v)
		}
		return "" // null, a boolean, an array: nothing that names a call
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return idValue(string(bytes.TrimSpace(line)), idText)
}

// idInObject searches o and the objects nested in it up to maxDepth: each
// known key in turn, shallowest first, so {"id":1,"result":{"callid":"x"}}
// (a JSON-RPC envelope) gives x; then the id-like keys, shallowest first.
func idInObject(o map[string]any) string {
	var levels [][]map[string]any
	for level := []map[string]any{o}; len(level) > 0 && len(levels) <= maxDepth; {
		levels = append(levels, level)
		var next []map[string]any
		for _, obj := range level {
			for _, k := range sortedKeys(obj) {
				if child, ok := obj[k].(map[string]any); ok {
					next = append(next, child)
				}
			}
		}
		level = next
	}
	for _, want := range callIDKeys {
		for _, level := range levels {
			for _, obj := range level {
				for _, k := range sortedKeys(obj) {
					if normKey(k) == want {
						if id := idValue(obj[k], validID); id != "" {
							return id
						}
					}
				}
			}
		}
	}
	for _, level := range levels {
		for _, obj := range level {
			for _, k := range sortedKeys(obj) {
				if idKey(k) {
					if id := idValue(obj[k], idText); id != "" {
						return id
					}
				}
			}
		}
	}
	return ""
}

// sortedKeys lists o's keys in order: a map forgets the answer's order, and
// the same answer must give the same id.
func sortedKeys(o map[string]any) []string {
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// idValue is v as a call id, when it is a string or number ok accepts.
func idValue(v any, ok func(string) bool) string {
	var s string
	switch v := v.(type) {
	case string:
		s = strings.TrimSpace(v)
	case json.Number:
		s = v.String()
	default:
		return ""
	}
	if !ok(s) || statusWord(s) {
		return ""
	}
	return s
}

func normKey(k string) string {
	return strings.ToLower(strings.NewReplacer("_", "", "-", "", ".", "").Replace(k))
}

// idKey reports whether a key has an id word in it: "id", "uid", "uuid" or
// "guid" as one of its words (split at '_', '-', '.', spaces and lower-to-
// upper case changes), so request_id and sessionId count and valid or
// provider do not.
func idKey(k string) bool {
	var words []string
	start := 0
	rs := []rune(k)
	for i, r := range rs {
		switch {
		case strings.ContainsRune("_-. ", r):
			words = append(words, string(rs[start:i]))
			start = i + 1
		case i > start && unicode.IsUpper(r) && unicode.IsLower(rs[i-1]):
			words = append(words, string(rs[start:i]))
			start = i
		}
	}
	words = append(words, string(rs[start:]))
	for _, w := range words {
		switch strings.ToLower(w) {
		case "id", "uid", "uuid", "guid":
			return true
		}
	}
	return false
}

// validID reports whether s can stand as a call id: 1 to maxCallID bytes of
// printable UTF-8 without white space.
func validID(s string) bool {
	return s != "" && len(s) <= maxCallID && utf8.ValidString(s) &&
		strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) < 0
}

// idText is validID for text the PBX did not mark as an id: letters, digits
// and the punctuation ids are made of (UUIDs, "B10D0EB1-1511", "1.2@host"),
// so an HTML page or a sentence is no id.
func idText(s string) bool {
	return validID(s) && strings.IndexFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("-_.:@+/=", r)
	}) < 0
}

// statusWord reports whether s is one of the words a PBX answers a
// command with when it has no id to give.
func statusWord(s string) bool {
	switch strings.ToLower(s) {
	case "ok", "success", "succeeded", "accepted", "done", "true", "false", "null", "error", "failed":
		return true
	}
	return false
}
