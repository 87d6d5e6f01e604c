package sim

import (
	"strings"

	"github.com/callpop/callpop/pbx"
)

// subscribed reports whether login takes calls in g.
func (p *PBX) subscribed(login string, g Group) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.off[subKey{userKey(login), strings.ToLower(g.ID)}]
}

// setSubscribed turns login's reception in g on or off.
func (p *PBX) setSubscribed(login string, g Group, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := subKey{userKey(login), strings.ToLower(g.ID)}
	if on {
		delete(p.off, k)
	} else {
		p.off[k] = true
	}
}

// DND reports whether user's do-not-disturb is on.
func (p *PBX) DND(user string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dnd[userKey(user)]
}

func (p *PBX) setDND(login string, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dnd[userKey(login)] = on
}

// available lists g's members who would ring now: subscribed to g and not
// in do-not-disturb.
func (p *PBX) available(g Group) []Account {
	var as []Account
	for _, m := range g.Members {
		a, _ := p.account(m)
		if p.subscribed(a.Name, g) && !p.DND(a.Name) {
			as = append(as, a)
		}
	}
	return as
}

// record appends r to the history, keeping it in start order.
func (p *PBX) record(r pbx.HistoryRecord) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := len(p.history)
	for i > 0 && p.history[i-1].Start.After(r.Start) {
		i--
	}
	p.history = append(p.history, pbx.HistoryRecord{})
	copy(p.history[i+1:], p.history[i:])
	p.history[i] = r
}

// History returns a copy of every call record, in start order.
func (p *PBX) History() []pbx.HistoryRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]pbx.HistoryRecord(nil), p.history...)
}
