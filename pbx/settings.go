package pbx

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// The states of a subscription (subscribeOnCalls, subscriptionStatus).
const (
	SubscriptionOn  = "on"
	SubscriptionOff = "off"
)

// SubscribeOnCalls turns user's call reception on or off (command
// subscribeOnCalls) in the group groupID, or in all their groups when groupID
// is empty. user is the CRM user id, or the PBX login when the integration
// runs with self_map. It is sent exactly once, never retried.
func (c *Client) SubscribeOnCalls(ctx context.Context, user, groupID string, on bool) error {
	if err := c.ready(CmdSubscribeOnCalls); err != nil {
		return err
	}
	if user == "" {
		return wrapCmd(CmdSubscribeOnCalls, invalid("user is required"))
	}
	status := SubscriptionOff
	if on {
		status = SubscriptionOn
	}
	params := url.Values{"user": {user}, "status": {status}}
	if groupID != "" {
		params.Set("group_id", groupID)
	}
	_, err := c.call(ctx, CmdSubscribeOnCalls, params)
	return err
}

// SubscriptionStatus reports whether user takes calls in the group groupID
// (command subscriptionStatus): SubscriptionOn or SubscriptionOff. Both
// arguments are required. It is retried on network errors and 5xx.
func (c *Client) SubscriptionStatus(ctx context.Context, user, groupID string) (string, error) {
	if err := c.ready(CmdSubscriptionStatus); err != nil {
		return "", err
	}
	if user == "" || groupID == "" {
		return "", wrapCmd(CmdSubscriptionStatus, invalid("user and group_id are required"))
	}
	body, err := c.call(ctx, CmdSubscriptionStatus, url.Values{"user": {user}, "group_id": {groupID}})
	if err != nil {
		return "", err
	}
	var a struct {
		Status flexString `json:"status"`
	}
	if err := decodeJSON(body, &a); err != nil {
		return "", wrapCmd(CmdSubscriptionStatus, err)
	}
	on, ok := parseBool(string(a.Status))
	if !ok {
		return "", wrapCmd(CmdSubscriptionStatus, fmt.Errorf("%w: status %q", ErrBadResponse, strings.TrimSpace(string(a.Status))))
	}
	if on {
		return SubscriptionOn, nil
	}
	return SubscriptionOff, nil
}

// SetDND turns user's do-not-disturb on or off (command set_dnd). It is sent
// exactly once, never retried.
func (c *Client) SetDND(ctx context.Context, user string, on bool) error {
	if err := c.ready(CmdSetDND); err != nil {
		return err
	}
	if user == "" {
		return wrapCmd(CmdSetDND, invalid("user is required"))
	}
	_, err := c.call(ctx, CmdSetDND, url.Values{"user": {user}, "state": {strconv.FormatBool(on)}})
	return err
}

// GetDND reports whether user's do-not-disturb is on (command get_dnd). It is
// retried on network errors and 5xx.
func (c *Client) GetDND(ctx context.Context, user string) (bool, error) {
	if err := c.ready(CmdGetDND); err != nil {
		return false, err
	}
	if user == "" {
		return false, wrapCmd(CmdGetDND, invalid("user is required"))
	}
	body, err := c.call(ctx, CmdGetDND, url.Values{"user": {user}})
	if err != nil {
		return false, err
	}
	var a struct {
		State *flexBool `json:"state"`
	}
	if err := decodeJSON(body, &a); err != nil {
		return false, wrapCmd(CmdGetDND, err)
	}
	if a.State == nil {
		return false, wrapCmd(CmdGetDND, fmt.Errorf("%w: no state", ErrBadResponse))
	}
	return bool(*a.State), nil
}
