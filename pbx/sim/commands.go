package sim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/callpop/callpop/internal/phone"
	"github.com/callpop/callpop/pbx"
)

// ok is the answer of the commands the document answers "200 OK".
var answerOK = map[string]string{"result": "OK"}

func invalidParameters() (int, any) { return http.StatusBadRequest, answerInvalidParameters }

func (p *PBX) cmdAccounts() (int, any) {
	return http.StatusOK, append([]Account{}, p.accounts...)
}

// groupAnswer is a groups entry; ext is a JSON number when all digits, as in
// the document's example.
type groupAnswer struct {
	ID       string          `json:"id"`
	RealName string          `json:"realName"`
	Ext      json.RawMessage `json:"ext,omitempty"`
}

func (p *PBX) cmdGroups(f url.Values) (int, any) {
	gs := p.groups
	if user := f.Get("user"); user != "" {
		a, found := p.account(user)
		if !found {
			return invalidParameters()
		}
		gs = p.groupsOf(a.Name)
	}
	out := make([]groupAnswer, 0, len(gs))
	for _, g := range gs {
		ga := groupAnswer{ID: g.ID, RealName: g.RealName}
		if g.Ext != "" {
			ga.Ext, _ = json.Marshal(g.Ext)
			if digits(g.Ext) && len(g.Ext) < 16 && (g.Ext == "0" || g.Ext[0] != '0') {
				ga.Ext = json.RawMessage(g.Ext)
			}
		}
		out = append(out, ga)
	}
	return http.StatusOK, out
}

func (p *PBX) cmdMakeCall(f url.Values) (int, any) {
	a, found := p.account(f.Get("user"))
	phone := strings.TrimSpace(f.Get("phone"))
	if !found || !validPhone(phone) {
		return invalidParameters()
	}
	id := p.newCallID()
	p.mu.Lock()
	closed := p.closed
	if !closed {
		p.plays.Add(1)
	}
	p.mu.Unlock()
	if closed {
		return http.StatusServiceUnavailable, map[string]string{"error": "PBX closed"}
	}
	go func() {
		defer p.plays.Done()
		if err := p.outgoing(p.ctx, a, phone, id); err != nil && p.ctx.Err() == nil {
			p.log.Warn("makeCall: playing the call failed", zap.String("callid", id), zap.Error(err))
		}
	}()
	return http.StatusOK, map[string]string{"callid": id}
}

func (p *PBX) cmdHistory(f url.Values) (int, any) {
	q, err := parseHistoryQuery(f, p.clock())
	if err != nil {
		return invalidParameters()
	}
	return http.StatusOK, csvAnswer(q.apply(p.History()))
}

func (p *PBX) cmdSubscribeOnCalls(f url.Values) (int, any) {
	a, found := p.account(f.Get("user"))
	on, valid := onOff(f.Get("status"))
	if !found || !valid {
		return invalidParameters()
	}
	gs := p.groupsOf(a.Name)
	if id := f.Get("group_id"); id != "" {
		g, found := p.group(id)
		if !found || !isMember(g, a.Name) {
			return invalidParameters()
		}
		gs = []Group{g}
	}
	for _, g := range gs {
		p.setSubscribed(a.Name, g, on)
	}
	return http.StatusOK, answerOK
}

func (p *PBX) cmdSubscriptionStatus(f url.Values) (int, any) {
	a, found := p.account(f.Get("user"))
	g, gfound := p.group(f.Get("group_id"))
	if !found || !gfound {
		return invalidParameters()
	}
	status := pbx.SubscriptionOff
	if isMember(g, a.Name) && p.subscribed(a.Name, g) {
		status = pbx.SubscriptionOn
	}
	return http.StatusOK, map[string]string{"status": status}
}

func (p *PBX) cmdSetDND(f url.Values) (int, any) {
	a, found := p.account(f.Get("user"))
	on, valid := trueFalse(f.Get("state"))
	if !found || !valid {
		return invalidParameters()
	}
	p.setDND(a.Name, on)
	return http.StatusOK, answerOK
}

func (p *PBX) cmdGetDND(f url.Values) (int, any) {
	a, found := p.account(f.Get("user"))
	if !found {
		return invalidParameters()
	}
	return http.StatusOK, map[string]bool{"state": p.DND(a.Name)}
}

// onOff reads subscribeOnCalls' status: on or off, any case.
func onOff(s string) (on, valid bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case pbx.SubscriptionOn:
		return true, true
	case pbx.SubscriptionOff:
		return false, true
	}
	return false, false
}

// trueFalse reads set_dnd's state: true or false, any case.
func trueFalse(s string) (v, valid bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// digits reports whether s is a non-empty run of ASCII digits.
func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validPhone accepts what a PBX dials: a number in the form phone.Dialable
// gives (an optional + and the digits), nothing a person still has to clean.
func validPhone(s string) bool {
	d, ok := phone.Dialable(s)
	return ok && d == s
}
