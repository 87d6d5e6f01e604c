package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/callpop/callpop/pbx"
)

// maxWebhookAnswer caps the CRM's answer the simulator reads: 64 KiB.
const maxWebhookAnswer = 64 << 10

// leg is one employee's side of a call.
type leg struct {
	acct      Account
	callid    string
	phone     string
	direction string // pbx.TypeIn or pbx.TypeOut
	group     string // groupRealName, when the call came through a group
}

// post sends one webhook, form-encoded, with crm_token, and returns the
// CRM's answer. Anything but a 2xx JSON answer is an ErrWebhook. Without a
// CRM URL it posts nothing. It blocks until the answer or ctx ends.
func (p *PBX) post(ctx context.Context, form url.Values) ([]byte, error) {
	if p.cfg.CRMURL == "" {
		return nil, nil
	}
	form.Set("crm_token", p.cfg.CRMToken)
	what := form.Get("cmd")
	if t := form.Get("type"); t != "" {
		what += " " + t
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.CRMURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrWebhook, what, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrWebhook, what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxWebhookAnswer))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: reading the answer: %w", ErrWebhook, what, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%w: %s: CRM answered %d: %.200s", ErrWebhook, what, resp.StatusCode, bytes.TrimSpace(body))
	}
	if !json.Valid(bytes.TrimSpace(body)) {
		return nil, fmt.Errorf("%w: %s: CRM answered %d with no JSON: %.200q", ErrWebhook, what, resp.StatusCode, body)
	}
	if ce := p.log.Check(zap.DebugLevel, "webhook posted"); ce != nil {
		ce.Write(zap.String("cmd", form.Get("cmd")), zap.String("type", form.Get("type")),
			zap.String("user", form.Get("user")), zap.String("callid", form.Get("callid")))
	}
	return body, nil
}

// set adds the non-empty fields of kv (key, value, key, value…) to form.
func set(form url.Values, kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			form.Set(kv[i], kv[i+1])
		}
	}
}

// legFields are the fields every event and history of l carries.
func (p *PBX) legFields(form url.Values, l leg) {
	set(form,
		"phone", l.phone,
		"user", l.acct.Name,
		"callid", l.callid,
		"ext", l.acct.Ext,
		"telnum", l.acct.Telnum,
		"groupRealName", l.group,
	)
	if l.direction == pbx.TypeIn {
		form.Set("diversion", p.diversion)
	}
}

// event posts cmd=event of type typ for l; extra are more key/value pairs.
func (p *PBX) event(ctx context.Context, typ string, l leg, extra ...string) error {
	form := url.Values{"cmd": {"event"}, "type": {typ}, "direction": {l.direction}}
	p.legFields(form, l)
	set(form, extra...)
	_, err := p.post(ctx, form)
	return err
}

// contact asks the CRM who is calling, as the PBX does for every new
// incoming call. A failed look-up is only logged: the real PBX rings on.
func (p *PBX) contact(ctx context.Context, callid, phone string) {
	body, err := p.post(ctx, url.Values{"cmd": {"contact"}, "phone": {phone}, "callid": {callid}})
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("contact look-up failed", zap.String("callid", callid), zap.Error(err))
		}
		return
	}
	var c struct {
		Name        string `json:"contact_name"`
		Responsible string `json:"responsible"`
	}
	_ = json.Unmarshal(body, &c)
	p.log.Debug("contact", zap.String("callid", callid), zap.String("name", c.Name), zap.String("responsible", c.Responsible))
}

// outcome is how a leg ended, for its history.
type outcome struct {
	status string // Success, Missed…
	start  time.Time
	wait   int // seconds ringing
	talk   int // seconds talking
}

// finish records l's call and posts its cmd=history.
func (p *PBX) finish(ctx context.Context, l leg, o outcome) error {
	link := ""
	switch {
	case o.status != statusSuccess:
	case p.cfg.RecordingsURL != "":
		link = p.cfg.RecordingsURL + l.callid + ".wav"
	case p.cfg.RecordURL != "":
		link = p.cfg.RecordURL + l.callid + ".mp3"
	}
	rec := pbx.HistoryRecord{
		UID:      l.callid,
		Type:     l.direction,
		Client:   l.phone,
		Account:  l.acct.Name,
		Via:      p.diversion,
		Start:    o.start,
		Wait:     o.wait,
		Duration: o.talk,
		Record:   link,
	}
	if l.direction == pbx.TypeOut && l.acct.Telnum != "" {
		rec.Via = l.acct.Telnum
	}
	if l.direction == pbx.TypeIn && o.status != "Success" {
		rec.Type = pbx.TypeMissed
	}
	p.record(rec)
	form := url.Values{
		"cmd":      {"history"},
		"type":     {l.direction},
		"status":   {o.status},
		"start":    {pbx.FormatTime(o.start)},
		"duration": {strconv.Itoa(o.talk)},
	}
	p.legFields(form, l)
	set(form, "link", link)
	_, err := p.post(ctx, form)
	return err
}
