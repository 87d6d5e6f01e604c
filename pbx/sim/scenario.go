package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/callpop/callpop/pbx"
)

// The PBX's event types and history statuses the scenarios use.
const (
	evIncoming    = "INCOMING"
	evAccepted    = "ACCEPTED"
	evCompleted   = "COMPLETED"
	evCancelled   = "CANCELLED"
	evOutgoing    = "OUTGOING"
	evTransferred = "TRANSFERRED"

	statusSuccess = "Success"
	statusMissed  = "Missed"
)

// script runs a call's steps in order and stops at the first error, which
// it keeps in err.
type script struct {
	p   *PBX
	ctx context.Context
	err error
}

func (s *script) event(typ string, l leg, extra ...string) {
	if s.err == nil {
		s.err = s.p.event(s.ctx, typ, l, extra...)
	}
}

// pause waits one Step.
func (s *script) pause() {
	if s.err == nil {
		s.err = s.p.sleep(s.ctx, s.p.step)
	}
}

// hold waits a duration drawn from span (one Step when span is zero) and
// returns it, so the history reports the time the call really rang or
// talked (Config.Now may be a frozen test clock, so it is not asked).
func (s *script) hold(span Span) time.Duration {
	if s.err != nil {
		return 0
	}
	d := s.p.draw(span)
	if s.err = s.p.sleep(s.ctx, d); s.err != nil {
		return 0
	}
	return d
}

func (s *script) contact(callid, phone string) {
	if s.err == nil {
		s.p.contact(s.ctx, callid, phone)
		s.err = s.ctx.Err()
	}
}

func (s *script) finish(l leg, o outcome) {
	if s.err == nil {
		s.err = s.p.finish(s.ctx, l, o)
	}
}

// draw is a duration from span, or one Step when span is zero.
func (p *PBX) draw(span Span) time.Duration {
	if span.Min <= 0 && span.Max <= 0 {
		return p.step
	}
	if span.Max <= span.Min {
		return span.Min
	}
	return span.Min + rand.N(span.Max-span.Min+1)
}

// seconds is d in whole seconds, as the PBX's history counts, rounded to
// the nearest; a call that took any time at all took at least 1 s.
func seconds(d time.Duration) int {
	n := int(d.Round(time.Second) / time.Second)
	if n == 0 && d > 0 {
		n = 1
	}
	return n
}

// lookup resolves a scenario's user and checks its phone.
func (p *PBX) lookup(user, phone string) (Account, error) {
	if !validPhone(strings.TrimSpace(phone)) {
		return Account{}, fmt.Errorf("%w: %q", ErrInvalidPhone, phone)
	}
	a, ok := p.account(user)
	if !ok {
		return Account{}, fmt.Errorf("%w: %q", ErrUnknownUser, user)
	}
	return a, nil
}

// DirectCall plays an incoming call from phone straight to user, who answers
// and talks: contact, INCOMING, ACCEPTED, COMPLETED, then history (in,
// Success). It blocks until the call ends, a webhook fails (ErrWebhook) or
// ctx ends, and returns the callid either way once one was issued.
func (p *PBX) DirectCall(ctx context.Context, user, phone string) (string, error) {
	a, err := p.lookup(user, phone)
	if err != nil {
		return "", err
	}
	l := leg{acct: a, callid: p.newCallID(), phone: phone, direction: pbx.TypeIn}
	start := p.clock()
	s := &script{p: p, ctx: ctx}
	s.contact(l.callid, phone)
	s.event(evIncoming, l)
	ring := s.hold(p.cfg.Ring)
	s.event(evAccepted, l)
	talk := s.hold(p.cfg.Talk)
	s.event(evCompleted, l)
	s.pause()
	s.finish(l, outcome{status: statusSuccess, start: start, wait: seconds(ring), talk: seconds(talk)})
	return l.callid, s.err
}

// GroupCall plays an incoming call from phone to the group (its id or name):
// contact, then INCOMING for every member taking calls in the group (those
// subscribed and not in do-not-disturb) with groupRealName, ACCEPTED for
// answeredBy, at once a CANCELLED for every other ringing member in shuffled
// order, as real PBXs race, then COMPLETED for answeredBy and history (in,
// Success) for answeredBy. An empty answeredBy means a random ringing
// member. It blocks like DirectCall and returns the callid.
func (p *PBX) GroupCall(ctx context.Context, group, answeredBy, phone string) (string, error) {
	if !validPhone(strings.TrimSpace(phone)) {
		return "", fmt.Errorf("%w: %q", ErrInvalidPhone, phone)
	}
	g, ok := p.group(group)
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownGroup, group)
	}
	ringing := p.available(g)
	if len(ringing) == 0 {
		return "", fmt.Errorf("%w: %q", ErrNobodyAvailable, g.ID)
	}
	answer := rand.IntN(len(ringing))
	if answeredBy != "" {
		a, ok := p.account(answeredBy)
		if !ok {
			return "", fmt.Errorf("%w: %q", ErrUnknownUser, answeredBy)
		}
		answer = -1
		for i, r := range ringing {
			if r.Name == a.Name {
				answer = i
			}
		}
		if answer < 0 {
			return "", fmt.Errorf("%w: %q in %q", ErrNotRinging, a.Name, g.ID)
		}
	}
	id := p.newCallID()
	legs := make([]leg, len(ringing))
	for i, a := range ringing {
		legs[i] = leg{acct: a, callid: id, phone: phone, direction: pbx.TypeIn, group: g.RealName}
	}
	winner := legs[answer]
	others := append(append([]leg(nil), legs[:answer]...), legs[answer+1:]...)
	rand.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })

	start := p.clock()
	s := &script{p: p, ctx: ctx}
	s.contact(id, phone)
	for _, l := range legs {
		s.event(evIncoming, l)
	}
	ring := s.hold(p.cfg.Ring)
	s.event(evAccepted, winner)
	for _, l := range others {
		s.event(evCancelled, l)
	}
	talk := s.hold(p.cfg.Talk)
	s.event(evCompleted, winner)
	s.pause()
	s.finish(winner, outcome{status: statusSuccess, start: start, wait: seconds(ring), talk: seconds(talk)})
	return id, s.err
}

// MissedCall plays an incoming call from phone to user that nobody answers:
// contact, INCOMING, CANCELLED (the client hung up), then history (in,
// Missed, no recording), listed as type missed. It blocks like DirectCall
// and returns the callid.
func (p *PBX) MissedCall(ctx context.Context, user, phone string) (string, error) {
	a, err := p.lookup(user, phone)
	if err != nil {
		return "", err
	}
	l := leg{acct: a, callid: p.newCallID(), phone: phone, direction: pbx.TypeIn}
	start := p.clock()
	s := &script{p: p, ctx: ctx}
	s.contact(l.callid, phone)
	s.event(evIncoming, l)
	ring := s.hold(p.cfg.Ring)
	s.event(evCancelled, l)
	s.pause()
	s.finish(l, outcome{status: statusMissed, start: start, wait: seconds(ring)})
	return l.callid, s.err
}

// Transfer plays an incoming call from phone that from answers and
// transfers to to: contact, INCOMING and ACCEPTED for from on the first
// callid; INCOMING and ACCEPTED for to on a new, second callid (before the
// old leg's TRANSFERRED, as field reports describe); TRANSFERRED for from on
// the first with second_callid; COMPLETED for to on the second; then the
// history (in, Success) of the first leg and of the second. It blocks like
// DirectCall and returns both callids.
func (p *PBX) Transfer(ctx context.Context, from, to, phone string) (first, second string, err error) {
	a, err := p.lookup(from, phone)
	if err != nil {
		return "", "", err
	}
	b, err := p.lookup(to, phone)
	if err != nil {
		return "", "", err
	}
	if a.Name == b.Name {
		return "", "", fmt.Errorf("%w: %q", ErrSameUser, a.Name)
	}
	l1 := leg{acct: a, callid: p.newCallID(), phone: phone, direction: pbx.TypeIn}
	start1 := p.clock()
	s := &script{p: p, ctx: ctx}
	s.contact(l1.callid, phone)
	s.event(evIncoming, l1)
	ring1 := s.hold(p.cfg.Ring)
	s.event(evAccepted, l1)
	talk1 := s.hold(p.cfg.Talk)
	l2 := leg{acct: b, callid: p.newCallID(), phone: phone, direction: pbx.TypeIn}
	start2 := p.clock()
	s.event(evIncoming, l2)
	// from stays on the line while to's phone rings: that is from's talk.
	ring2 := s.hold(p.cfg.Ring)
	s.event(evAccepted, l2)
	s.event(evTransferred, l1, "second_callid", l2.callid)
	talk2 := s.hold(p.cfg.Talk)
	s.event(evCompleted, l2)
	s.pause()
	s.finish(l1, outcome{status: statusSuccess, start: start1, wait: seconds(ring1), talk: seconds(talk1 + ring2)})
	s.finish(l2, outcome{status: statusSuccess, start: start2, wait: seconds(ring2), talk: seconds(talk2)})
	return l1.callid, l2.callid, s.err
}

// OutgoingCall plays a call user places to phone, as makeCall does: OUTGOING,
// ACCEPTED (the client picked up), COMPLETED, then history (out, Success).
// It blocks like DirectCall and returns the callid.
func (p *PBX) OutgoingCall(ctx context.Context, user, phone string) (string, error) {
	a, err := p.lookup(user, phone)
	if err != nil {
		return "", err
	}
	id := p.newCallID()
	return id, p.outgoing(ctx, a, phone, id)
}

// outgoing plays the outgoing call id of a to phone.
func (p *PBX) outgoing(ctx context.Context, a Account, phone, id string) error {
	l := leg{acct: a, callid: id, phone: phone, direction: pbx.TypeOut}
	start := p.clock()
	s := &script{p: p, ctx: ctx}
	s.event(evOutgoing, l)
	ring := s.hold(p.cfg.Ring)
	s.event(evAccepted, l)
	talk := s.hold(p.cfg.Talk)
	s.event(evCompleted, l)
	s.pause()
	s.finish(l, outcome{status: statusSuccess, start: start, wait: seconds(ring), talk: seconds(talk)})
	return s.err
}
