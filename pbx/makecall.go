package pbx

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"unicode"
)

// MakeCall asks the PBX to ring user's phone and then connect them to phone
// (command makeCall) and returns the call id. user is the PBX login, internal
// number or direct number. It is sent exactly once, never retried: a retry
// could ring the manager twice.
func (c *Client) MakeCall(ctx context.Context, user, phone string) (string, error) {
	if err := c.ready(CmdMakeCall); err != nil {
		return "", err
	}
	if user == "" || phone == "" {
		return "", wrapCmd(CmdMakeCall, invalid("user and phone are required"))
	}
	body, err := c.call(ctx, CmdMakeCall, url.Values{"user": {user}, "phone": {phone}})
	if err != nil {
		return "", err
	}
	id, err := parseCallID(body)
	if err != nil {
		return "", wrapCmd(CmdMakeCall, err)
	}
	return id, nil
}

// parseCallID reads makeCall's answer, "200 with the call id": a JSON object
// with callid, call_id or id (a string or a number), a JSON string or
// number, or the bare id as plain text.
func parseCallID(body []byte) (string, error) {
	b := trimBody(body)
	if len(b) == 0 {
		return "", fmt.Errorf("%w: empty call id", ErrBadResponse)
	}
	var id string
	switch {
	case b[0] == '{':
		var o struct {
			CallID  flexString `json:"callid"`
			CallID2 flexString `json:"call_id"`
			ID      flexString `json:"id"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return "", fmt.Errorf("%w: %w", ErrBadResponse, err)
		}
		id = string(firstNonEmpty(o.CallID, o.CallID2, o.ID))
	case json.Valid(b):
		var s flexString
		if err := json.Unmarshal(b, &s); err != nil {
			return "", fmt.Errorf("%w: %w", ErrBadResponse, err)
		}
		id = string(s)
	default:
		id = string(b)
	}
	id = strings.TrimSpace(id)
	if id == "" || len(id) > 256 || strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		return "", fmt.Errorf("%w: no call id in %.60q", ErrBadResponse, b)
	}
	return id, nil
}

func firstNonEmpty(ss ...flexString) flexString {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
