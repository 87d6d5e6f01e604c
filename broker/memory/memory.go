// Package memory is the embedded broker: call state, per-user event logs and
// fan-out inside one process. It is the default for a single node and for
// `callpop demo`; several Nodes of one Broker stand in for a cluster in tests.
package memory

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/tenant"
)

// Config configures the embedded broker; zero values take the defaults.
type Config struct {
	LogSize     int           // events kept per user for resume; 0 = event.DefaultLogSize
	RecentCalls int           // records kept per user; 0 = event.DefaultRecentCalls
	RecordTTL   time.Duration // call records kept after their last change; 0 = event.DefaultRecordTTL
	Now         func() time.Time
}

// state is shared by every Node of a Broker. Guarded by mu; handlers are
// called with mu held so every node sees one user's frames in log order.
type state struct {
	cfg   Config
	mu    sync.Mutex
	calls map[string]*callEntry
	users map[string]*userState
	nodes []*Broker
	// expiring lists each call record once, in the order they may expire:
	// sweep looks only at its head.
	expiring []expiring
	head     int // of expiring

	tickets tickets // socket tickets, under their own lock
}

type expiring struct {
	callID string
	entry  *callEntry
	at     time.Time
}

type callEntry struct {
	rec     event.CallState
	expires time.Time
}

type userState struct {
	log    []event.Message // oldest first, at most LogSize
	last   event.ID
	active map[string]event.CallFrame // by callid
	recent []event.Record             // newest first
}

// Broker is one node's view of the embedded broker.
type Broker struct {
	s       *state
	handler event.Handler
	subs    map[string]int // guarded by s.mu
}

var _ event.Broker = (*Broker)(nil)

// New returns an embedded broker.
func New(cfg Config) *Broker {
	if cfg.LogSize <= 0 {
		cfg.LogSize = event.DefaultLogSize
	}
	if cfg.RecentCalls <= 0 {
		cfg.RecentCalls = event.DefaultRecentCalls
	}
	if cfg.RecordTTL <= 0 {
		cfg.RecordTTL = event.DefaultRecordTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &state{cfg: cfg, calls: map[string]*callEntry{}, users: map[string]*userState{}}
	return s.node()
}

// Node returns another node sharing this broker's state, as a second
// callpop process would share a Redis.
func (b *Broker) Node() *Broker { return b.s.node() }

func (s *state) node() *Broker {
	n := &Broker{s: s, subs: map[string]int{}}
	s.mu.Lock()
	s.nodes = append(s.nodes, n)
	s.mu.Unlock()
	return n
}

// Register implements event.Subscriber.
func (b *Broker) Register(h event.Handler) {
	b.s.mu.Lock()
	b.handler = h
	b.s.mu.Unlock()
}

// Subscribe implements event.Subscriber.
func (b *Broker) Subscribe(_ context.Context, user string) error {
	b.s.mu.Lock()
	b.subs[user]++
	b.s.mu.Unlock()
	return nil
}

// Unsubscribe implements event.Subscriber.
func (b *Broker) Unsubscribe(_ context.Context, user string) error {
	b.s.mu.Lock()
	if b.subs[user]--; b.subs[user] <= 0 {
		delete(b.subs, user)
	}
	b.s.mu.Unlock()
	return nil
}

// Update implements event.Publisher. It never waits but for the broker's
// lock, held for microseconds, so a context has nothing to bound.
func (b *Broker) Update(_ context.Context, callID string, fn event.UpdateFunc) error {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	s.sweep(now)
	e := s.calls[callID]
	if e == nil || now.After(e.expires) {
		e = &callEntry{rec: event.CallState{CallID: callID}}
		s.calls[callID] = e
		s.expiring = append(s.expiring, expiring{callID: callID, entry: e, at: now.Add(s.cfg.RecordTTL)})
	}
	// The record is kept even when nothing is sent: a tombstone or an early
	// rating must be there for the next webhook of the call.
	outs := fn(&e.rec)
	e.expires = now.Add(s.cfg.RecordTTL)
	if len(outs) == 0 {
		return nil
	}
	for _, ch := range e.rec.Active(outs, now) {
		u := s.user(ch.UserKey)
		if ch.Leg == nil {
			delete(u.active, callID)
		} else {
			u.active[callID] = ch.Leg.Last
		}
	}
	for _, o := range outs {
		u := s.user(o.UserKey)
		if o.Record != nil {
			u.keep(*o.Record, s.cfg.RecentCalls)
		}
		if o.Payload != nil {
			s.send(o.UserKey, u, o.Payload, now)
		}
	}
	return nil
}

// send appends a frame to the user's log and hands it to every node
// subscribed to them. s.mu must be held.
func (s *state) send(user string, u *userState, payload []byte, now time.Time) {
	u.last = u.last.Next(uint64(now.UnixMilli()))
	m := event.Message{UserKey: user, ID: u.last, Data: event.WithID(payload, u.last.String())}
	if len(u.log) >= s.cfg.LogSize {
		u.log = slices.Delete(u.log, 0, len(u.log)-s.cfg.LogSize+1)
	}
	u.log = append(u.log, m)
	for _, n := range s.nodes {
		if n.subs[user] > 0 && n.handler != nil {
			n.handler(m)
		}
	}
}

// MarkSeen implements event.CallLog. It looks callIDs up in the user's
// recent calls only, so an id it does not find there creates nothing, not
// even the user's state.
func (b *Broker) MarkSeen(_ context.Context, user string, callIDs []string) (int, error) {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[user]
	if u == nil {
		return 0, nil
	}
	now := s.cfg.Now()
	marked := 0
	// A tenant's calls are stored under scoped ids (event.CallState.Scope),
	// and remember the user by their unscoped key.
	tid, local := tenant.Split(user)
	for _, id := range callIDs {
		i := slices.IndexFunc(u.recent, func(r event.Record) bool { return r.CallID == id })
		if i < 0 || !u.recent[i].UnseenMissed() {
			continue
		}
		u.recent[i].Seen = true
		if e := s.calls[tenant.Key(tid, id)]; e != nil && !now.After(e.expires) {
			e.rec.MarkSeen(local)
		}
		s.send(user, u, event.Encode(event.SeenFrame{Type: event.FrameSeen, CallID: id}), now)
		marked++
	}
	return marked, nil
}

// sweep drops expired call records, so memory stays bounded by the calls of
// about one RecordTTL. It costs O(1) per update amortized: it looks at the
// head of expiring only. A record changed since it was queued is queued again
// at its new expiry; as that can sit behind later entries, a record may
// linger up to another RecordTTL (reads check expiry themselves).
func (s *state) sweep(now time.Time) {
	for s.head < len(s.expiring) && now.After(s.expiring[s.head].at) {
		x := s.expiring[s.head]
		s.expiring[s.head] = expiring{}
		s.head++
		switch e := s.calls[x.callID]; {
		case e != x.entry: // replaced by a newer record of the same call id, queued on its own
		case now.After(e.expires):
			delete(s.calls, x.callID)
		default:
			s.expiring = append(s.expiring, expiring{callID: x.callID, entry: e, at: e.expires})
		}
	}
	if s.head > 1024 && s.head*2 > len(s.expiring) {
		s.expiring = append(s.expiring[:0:0], s.expiring[s.head:]...)
		s.head = 0
	}
}

func (s *state) user(key string) *userState {
	u := s.users[key]
	if u == nil {
		u = &userState{active: map[string]event.CallFrame{}}
		s.users[key] = u
	}
	return u
}

// keep stores rec in the user's recent calls, replacing an earlier copy of
// the same call, newest first.
func (u *userState) keep(rec event.Record, max int) {
	u.recent = slices.DeleteFunc(u.recent, func(r event.Record) bool { return r.CallID == rec.CallID })
	i, _ := slices.BinarySearchFunc(u.recent, rec, func(a, b event.Record) int {
		return cmp.Or(b.Start.Compare(a.Start), cmp.Compare(b.CallID, a.CallID))
	})
	u.recent = slices.Insert(u.recent, i, rec)
	if len(u.recent) > max {
		u.recent = u.recent[:max]
	}
}

// Snapshot implements event.Subscriber.
func (b *Broker) Snapshot(_ context.Context, user string, since event.ID) (event.Snapshot, error) {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	snap := event.Snapshot{Active: []event.CallFrame{}}
	u := s.users[user]
	if u == nil {
		return snap, nil
	}
	snap.Last = u.last
	for id, f := range u.active {
		if f.Stale(now) {
			delete(u.active, id)
			continue
		}
		snap.Active = append(snap.Active, f)
	}
	event.SortActive(snap.Active)
	if !since.IsZero() {
		i, found := slices.BinarySearchFunc(u.log, since, func(m event.Message, id event.ID) int {
			if m.ID == id {
				return 0
			} else if m.ID.Less(id) {
				return -1
			}
			return 1
		})
		if found {
			snap.Recovered = true
			snap.Missed = slices.Clone(u.log[i+1:])
		}
	}
	return snap, nil
}

// RecentCalls implements event.CallLog.
func (b *Broker) RecentCalls(_ context.Context, user string, limit int) ([]event.Record, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	u := b.s.users[user]
	if u == nil {
		return []event.Record{}, nil
	}
	return slices.Clone(u.recent[:min(limit, len(u.recent))]), nil
}

// Ready implements event.Broker: the embedded broker is always ready.
func (b *Broker) Ready(context.Context) error { return nil }

// Close implements event.Broker.
func (b *Broker) Close() error {
	b.s.mu.Lock()
	b.handler = nil
	b.subs = map[string]int{}
	b.s.mu.Unlock()
	return nil
}
