package sim

import (
	"context"
	"fmt"
	"math/rand/v2"

	"go.uber.org/zap"
)

// Demo plays calls until ctx ends, one after another with Config.DemoPause
// between them: a direct call, a group call, a missed call, a transfer and
// an outgoing call, round and round, each ringing and talking as long as
// Config.Ring and Config.Talk say, between random employees and clients:
// mostly Config.Phones, otherwise random Russian numbers in the forms PBXs
// send (79…, 89…, +79…). A failed call is logged and the next one played.
// It blocks until ctx ends and then returns nil; it returns ErrNoAccounts at
// once when there is nobody to call.
func (p *PBX) Demo(ctx context.Context) error {
	if len(p.accounts) == 0 {
		return ErrNoAccounts
	}
	for i := 0; ; i++ {
		what, ids, err := p.demoCall(ctx, i)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			p.log.Warn("demo call failed", zap.String("scenario", what), zap.Error(err))
		} else {
			p.log.Info("demo call played", zap.String("scenario", what), zap.Strings("callids", ids))
		}
		if pause(ctx, p.demoPause) != nil {
			return nil
		}
	}
}

// demoCall plays the i-th call of the demo.
func (p *PBX) demoCall(ctx context.Context, i int) (what string, ids []string, err error) {
	a := p.accounts[rand.IntN(len(p.accounts))]
	// Each round opens with a call to the focus, so whoever watches as
	// them sees a popup within seconds of starting.
	if f, ok := p.account(p.cfg.DemoFocus); ok && (i%5 == 0 || rand.IntN(3) > 0) {
		a = f
	}
	phone := p.demoPhone()
	var id string
	switch i % 5 {
	case 1:
		if g, ok := p.demoGroup(); ok {
			id, err = p.GroupCall(ctx, g.ID, "", phone)
			return "group", []string{id}, err
		}
		fallthrough
	case 0:
		id, err = p.DirectCall(ctx, a.Name, phone)
		return "direct", []string{id}, err
	case 2:
		id, err = p.MissedCall(ctx, a.Name, phone)
		return "missed", []string{id}, err
	case 3:
		if len(p.accounts) > 1 {
			b := p.accounts[rand.IntN(len(p.accounts))]
			for b.Name == a.Name {
				b = p.accounts[rand.IntN(len(p.accounts))]
			}
			first, second, err := p.Transfer(ctx, a.Name, b.Name, phone)
			return "transfer", []string{first, second}, err
		}
	}
	id, err = p.OutgoingCall(ctx, a.Name, phone)
	return "outgoing", []string{id}, err
}

// demoGroup picks a random group with somebody taking calls.
func (p *PBX) demoGroup() (Group, bool) {
	var gs []Group
	for _, g := range p.groups {
		if len(p.available(g)) > 0 {
			gs = append(gs, g)
		}
	}
	if len(gs) == 0 {
		return Group{}, false
	}
	return gs[rand.IntN(len(gs))], true
}

// demoPhone is one of Config.Phones three times in four, else a random
// number.
func (p *PBX) demoPhone() string {
	if len(p.cfg.Phones) > 0 && rand.IntN(4) > 0 {
		return p.cfg.Phones[rand.IntN(len(p.cfg.Phones))]
	}
	return randomPhone()
}

// mobileCodes are Russian mobile operator codes, landlineCodes Moscow's and
// St Petersburg's.
var (
	mobileCodes   = []string{"903", "905", "909", "910", "915", "916", "925", "926", "929", "953", "965", "977", "985", "999"}
	landlineCodes = []string{"495", "499", "812"}
)

// randomPhone is a random Russian number, mostly mobile, as 7XXXXXXXXXX,
// 8XXXXXXXXXX or +7XXXXXXXXXX.
func randomPhone() string {
	code := mobileCodes[rand.IntN(len(mobileCodes))]
	if rand.IntN(5) == 0 {
		code = landlineCodes[rand.IntN(len(landlineCodes))]
	}
	number := fmt.Sprintf("%s%07d", code, rand.IntN(10_000_000))
	switch rand.IntN(3) {
	case 0:
		return "7" + number
	case 1:
		return "8" + number
	}
	return "+7" + number
}
