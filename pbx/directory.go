package pbx

import (
	"context"
	"encoding/json"
	"net/url"
)

// Account is a PBX employee, an entry of the accounts answer (docs/pbx-api.md,
// accounts).
type Account struct {
	// Name is the login, the user the PBX's webhooks carry.
	Name string `json:"name"`
	// RealName is the employee's display name.
	RealName string `json:"realName"`
	// Ext is the internal number, if any. The PBX may send it as a JSON
	// number or a string; both are accepted.
	Ext string `json:"ext,omitempty"`
	// Telnum is the direct number, if any; a number or a string.
	Telnum string `json:"telnum,omitempty"`
}

// UnmarshalJSON accepts ext and telnum as strings or numbers.
func (a *Account) UnmarshalJSON(b []byte) error {
	var w struct {
		Name     flexString `json:"name"`
		RealName flexString `json:"realName"`
		Ext      flexString `json:"ext"`
		Telnum   flexString `json:"telnum"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*a = Account{Name: string(w.Name), RealName: string(w.RealName), Ext: string(w.Ext), Telnum: string(w.Telnum)}
	return nil
}

// Group is a PBX department, an entry of the groups answer (docs/pbx-api.md, groups).
type Group struct {
	// ID is the group's id, the group_id of subscribeOnCalls.
	ID string `json:"id"`
	// RealName is the department's name, the groupRealName of webhooks.
	RealName string `json:"realName"`
	// Ext is the group's internal number, if any; the document's example
	// sends it as a JSON number, a string is accepted too.
	Ext string `json:"ext,omitempty"`
}

// UnmarshalJSON accepts id and ext as strings or numbers.
func (g *Group) UnmarshalJSON(b []byte) error {
	var w struct {
		ID       flexString `json:"id"`
		RealName flexString `json:"realName"`
		Ext      flexString `json:"ext"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*g = Group{ID: string(w.ID), RealName: string(w.RealName), Ext: string(w.Ext)}
	return nil
}

// Accounts lists the PBX's employees (command accounts). It is retried on
// network errors and 5xx.
func (c *Client) Accounts(ctx context.Context) ([]Account, error) {
	body, err := c.call(ctx, CmdAccounts, nil)
	if err != nil {
		return nil, err
	}
	var as []Account
	if err := decodeJSON(body, &as); err != nil {
		return nil, wrapCmd(CmdAccounts, err)
	}
	return as, nil
}

// Groups lists the PBX's departments (command groups); a non-empty user
// limits them to that employee's. It is retried on network errors and 5xx.
func (c *Client) Groups(ctx context.Context, user string) ([]Group, error) {
	var params url.Values
	if user != "" {
		params = url.Values{"user": {user}}
	}
	body, err := c.call(ctx, CmdGroups, params)
	if err != nil {
		return nil, err
	}
	var gs []Group
	if err := decodeJSON(body, &gs); err != nil {
		return nil, wrapCmd(CmdGroups, err)
	}
	return gs, nil
}
